"""Domain datasets of the case studies (``<data>/domains/``): medicine, law and finance.

Each comes without a train/test split (or with only one labelled file), so the loaders make a fixed,
seeded split that never changes between runs, and return the examples in a fixed shuffled order so
that ``limit=N`` is a random sample of the split rather than the first rows of the file.

* ``medical-abstracts`` (Schopf et al. 2022): 2,888 abstracts, five condition classes
  (``medical_tc_labels.csv`` names them). Split: per class, texts ordered by a hash of the text,
  the first 75 % train, the rest test (identical texts always land in the same split).
* ``unfair-tos`` (Lippi et al. 2019): ``sentences/<Service>.txt`` line-aligned with
  ``tags/<Service>.txt``. A tag is a category (``a`` arbitration, ``ch`` unilateral change, ``cr``
  content removal, ``j`` jurisdiction, ``law`` choice of law, ``ltd`` limitation of liability,
  ``ter`` unilateral termination, ``use`` contract by using, ``pinc`` privacy included) with a
  level: 1 clearly fair, 2 potentially unfair, 3 clearly unfair (``countrym`` marks a clause that
  names a country and always comes with another tag). A sentence is **unfair** when one of its
  tags has level 2 or 3 (1,374 of 17,383 sentences), else **fair**; the tags are kept in
  ``meta``. Split by service (no service in both): every fifth service in alphabetical order is
  test (10 of 50).
* ``financial-phrasebank`` (Malo et al. 2014): ``all-data.csv`` (``label,news``; ISO-8859-1, so
  read as latin-1: 84 sentences carry the source's mojibake, e.g. ``Sepp+Æl+Æ`` for Seppälä). Split
  as for the abstracts.

>>> unfair_label(["ltd1", "countrym"]), unfair_label(["ltd2"]), unfair_label([])
('fair', 'unfair', 'fair')
"""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from explainlm.datasets.examples import RationaleExample
from explainlm.errors import DataFormatError, UserError

TRAIN_SHARE = 0.75
SPLITS = ("train", "test", "all")
_TAG = re.compile(r"^([a-z]+?)([123])$")


def _key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _check_split(split: str | None) -> str:
    split = split or "test"
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return split


def _need(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"dataset file not found: {path}")
    return path


def stratified_split(examples: Sequence[RationaleExample], split: str) -> list[RationaleExample]:
    """The ``split`` part of ``examples``: per label, by text hash, the first 75 % are train.

    The result is in hash order (a fixed shuffle), so a prefix is a random sample.
    """
    split = _check_split(split)
    by_label: dict[str, list[RationaleExample]] = defaultdict(list)
    for e in examples:
        by_label[e.label].append(e)
    out: list[RationaleExample] = []
    for group in by_label.values():
        group.sort(key=lambda e: (_key(e.text), e.id))
        # identical texts are adjacent: cut between distinct texts only
        cut = round(TRAIN_SHARE * len(group))
        while 0 < cut < len(group) and group[cut].text == group[cut - 1].text:
            cut += 1
        part = group if split == "all" else group[:cut] if split == "train" else group[cut:]
        out.extend(part)
    out.sort(key=lambda e: (_key(e.text), e.id))
    return out


def _limit(examples: list[RationaleExample], limit: int | None) -> list[RationaleExample]:
    return examples[:limit] if limit is not None else examples


def load_medical_abstracts(
    root: Path, split: str | None = "test", limit: int | None = None
) -> list[RationaleExample]:
    """Medical abstracts with their condition name as the label (see the module docstring)."""
    names_file = _need(root / "medical_tc_labels.csv")
    data_file = _need(root / "medical_tc_test.csv")
    with names_file.open(encoding="utf-8", newline="") as f:
        names = {r["condition_label"]: r["condition_name"] for r in csv.DictReader(f)}
    examples = []
    with data_file.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            code, text = row.get("condition_label"), (row.get("medical_abstract") or "").strip()
            if code not in names or not text:
                raise DataFormatError(f"{data_file}:{line}: bad condition label or empty abstract")
            examples.append(RationaleExample(f"abs{line}", text, names[code], meta={"line": line}))
    return _limit(stratified_split(examples, split or "test"), limit)


def load_financial_phrasebank(
    root: Path, split: str | None = "test", limit: int | None = None
) -> list[RationaleExample]:
    """Financial PhraseBank sentences (positive / negative / neutral), read as latin-1."""
    path = _need(root / "all-data.csv" if root.is_dir() else root)
    text = path.read_bytes().decode("latin-1")
    examples = []
    reader = csv.reader(io.StringIO(text, newline=""))
    for line, row in enumerate(reader, start=1):
        if line == 1 and row[:2] == ["label", "news"]:
            continue
        if len(row) != 2 or row[0] not in ("positive", "negative", "neutral") or not row[1].strip():
            raise DataFormatError(f"{path}:{line}: expected label,news with a known label")
        examples.append(RationaleExample(f"fpb{line}", row[1].strip(), row[0], meta={"line": line}))
    return _limit(stratified_split(examples, split or "test"), limit)


def unfair_label(tags: Sequence[str]) -> str:
    """``unfair`` when a tag has level 2 (potentially unfair) or 3 (clearly unfair), else ``fair``."""
    for tag in tags:
        m = _TAG.match(tag)
        if m and m.group(2) in ("2", "3"):
            return "unfair"
    return "fair"


def tos_services(root: Path) -> list[str]:
    """The services of the corpus, alphabetically (file stems of ``sentences/``)."""
    services = sorted(p.stem for p in (_need(root / "sentences")).glob("*.txt"))
    if not services:
        raise UserError(f"no sentences/*.txt under {root}")
    return services


def load_unfair_tos(
    root: Path, split: str | None = "test", limit: int | None = None
) -> list[RationaleExample]:
    """Terms-of-service sentences labelled fair / unfair (see the module docstring)."""
    split = _check_split(split)
    services = tos_services(root)
    test = {s for i, s in enumerate(services) if i % 5 == 4}
    chosen = [s for s in services if split == "all" or (s in test) == (split == "test")]
    examples = []
    for service in chosen:
        sent_file, tag_file = (
            root / "sentences" / f"{service}.txt",
            root / "tags" / f"{service}.txt",
        )
        sentences = sent_file.read_text(encoding="utf-8").splitlines()
        tags = _need(tag_file).read_text(encoding="utf-8").splitlines()
        if len(sentences) != len(tags):
            raise DataFormatError(
                f"{tag_file}: {len(tags)} tag lines for {len(sentences)} sentences in {sent_file}"
            )
        for line, (sentence, tag_line) in enumerate(zip(sentences, tags, strict=True), start=1):
            if not sentence.strip():
                continue
            tag_list = tag_line.split()
            meta = {"service": service, "line": line, "tags": tag_list}
            examples.append(
                RationaleExample(
                    f"{service}:{line}", sentence.strip(), unfair_label(tag_list), meta=meta
                )  # fmt: skip
            )
    examples.sort(key=lambda e: (_key(e.text), e.id))
    return _limit(examples, limit)


__all__ = [
    "load_financial_phrasebank",
    "load_medical_abstracts",
    "load_unfair_tos",
    "stratified_split",
    "tos_services",
    "unfair_label",
]
