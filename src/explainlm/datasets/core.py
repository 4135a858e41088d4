"""The dataset registry: built-in datasets by name, and loading a dataset by name or path.

A built-in dataset is a :class:`DatasetSpec` in :data:`DATASETS` (an
:class:`explainlm.registry.Registry`): where it lives under the data directory, its default split,
and the loader that reads it. Add one with ``DATASETS.add(name, DatasetSpec(...))``.

>>> DATASETS["sst-rationales"].split is None, "hatexplain" in DATASETS
(True, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainlm.datasets import domains, loaders
from explainlm.datasets.examples import RationaleExample, align_token_rationale, windows
from explainlm.datasets.tables import TextTable, read_table
from explainlm.errors import UserError
from explainlm.paths import data_dir as resolve_data_dir
from explainlm.registry import Registry

# (folder or file of the dataset, split, annotator group, limit) → examples
Loader = Callable[[Path, "str | None", "str | None", "int | None"], list[RationaleExample]]


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in dataset: ``path`` under the data directory, default ``split``, its ``loader``."""

    path: str
    split: str | None
    loader: Loader
    description: str = ""

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split}


DATASETS: Registry[DatasetSpec] = Registry("dataset")
DATASETS.add(
    "sst2",
    DatasetSpec(
        "sst2",
        "test",
        lambda root, split, group, limit: loaders.load_sst2(root / f"{split}.tsv", limit=limit),
        "SST-2 (no rationales)",
    ),
)
DATASETS.add(
    "sst-trees",
    DatasetSpec(
        "sst-trees",
        "test",
        lambda root, split, group, limit: loaders.load_sst_trees(
            root / f"{split}.txt", limit=limit
        ),
        "SST PTB trees; rationale = leaves with the root's sentiment direction",
    ),
)
DATASETS.add(
    "sst-rationales",
    DatasetSpec(
        "rationales/sst.csv",
        None,
        lambda root, split, group, limit: loaders.load_rationale_csv(
            root, group=group, limit=limit
        ),
        "SST sentences with majority-vote rationales of 6 annotators (Thorn Jakobsen et al.)",
    ),
)
for _name, _doc in (
    ("eraser-movies", "ERASER movie reviews with evidence spans (long: windowed)"),
    ("hatexplain", "HateXplain in ERASER form (toxic / non-toxic)"),
):
    DATASETS.add(
        _name,
        DatasetSpec(
            _name,
            "test",
            lambda root, split, group, limit: loaders.load_eraser(root, split, limit=limit),
            _doc,
        ),
    )

for _name, _path, _loader, _doc in (
    ("medical-abstracts", "domains/medical-abstracts", domains.load_medical_abstracts,
     "Medical abstracts, 5 condition classes (Schopf et al. 2022); fixed 75/25 split"),
    ("unfair-tos", "domains/unfair-tos", domains.load_unfair_tos,
     "Terms-of-service sentences, fair / unfair (Lippi et al. 2019); split by service"),
    ("financial-phrasebank", "domains/financial-phrasebank", domains.load_financial_phrasebank,
     "Financial news sentences, positive / negative / neutral (Malo et al. 2014); fixed split"),
):  # fmt: skip
    DATASETS.add(
        _name,
        DatasetSpec(
            _path,
            "test",
            lambda root, split, group, limit, _load=_loader: _load(root, split, limit),
            _doc,
        ),
    )


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    split: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    group: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    rationale_column: str | None = "rationale",
) -> list[RationaleExample]:
    """Load a built-in dataset by name (see :data:`DATASETS`) or a file/folder by path.

    A path to a ``.tsv``/``.csv``/``.jsonl`` file is read with :func:`load_generic` (an ERASER folder
    — one with ``docs/`` — with :func:`load_eraser`). ``group`` selects one annotator group of the
    rationale CSVs (majority within the group).
    """
    name = str(name_or_path)
    if name in DATASETS:
        spec = DATASETS[name]
        root = resolve_data_dir(data_dir) / spec.path
        if not root.exists():
            raise UserError(f"dataset {name!r} not found: {root} does not exist")
        return spec.loader(root, split or spec.split, group, limit)
    p = Path(name).expanduser()
    if not p.exists():
        known = ", ".join(DATASETS)
        raise UserError(f"unknown dataset {name!r}: not a built-in name ({known}) nor a path")
    if p.is_dir():
        if (p / "docs").is_dir():
            return loaders.load_eraser(p, split or "test", limit=limit)
        raise UserError(f"{p}: a dataset folder must be in ERASER form (with docs/)")
    if p.suffix == ".txt":
        return loaders.load_sst_trees(p, limit=limit)
    return loaders.load_generic(
        p,
        text_column=text_column,
        label_column=label_column,
        rationale_column=rationale_column,
        limit=limit,
    )


def read_labelled(
    source: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    limit: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> TextTable:
    """Texts and labels from a file, or from a built-in dataset named ``NAME`` or ``NAME:SPLIT``.

    Lets ``explainlm train`` use the ERASER sets directly (``eraser-movies:train``,
    ``hatexplain:val``), whose texts live in a ``docs/`` folder rather than in one table. A path that
    exists always wins over a dataset name.

    >>> read_labelled("hatexplain:val", limit=2).labels      # doctest: +SKIP
    ['non-toxic', 'toxic']
    """
    text = str(source)
    name, _, split = text.partition(":")
    if name in DATASETS and not Path(text).exists():
        examples = load_dataset(name, split=split or None, data_dir=data_dir, limit=limit)
        spec = DATASETS[name]
        where = resolve_data_dir(data_dir) / spec.path
        return TextTable(
            where / f"{split or spec.split or ''}",
            [e.text for e in examples],
            [e.label for e in examples],
            [int(e.meta.get("line", i + 1)) for i, e in enumerate(examples)],
        )
    return read_table(source, text_column=text_column, label_column=label_column, limit=limit)


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "RationaleExample",
    "align_token_rationale",
    "load_dataset",
    "read_labelled",
    "windows",
]
