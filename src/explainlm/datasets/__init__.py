"""Datasets with human rationales, aligned to explainlm's word units.

Every loader returns :class:`RationaleExample` objects: a text, its gold label, and (when the data
has one) a binary rationale with one flag per word unit of :func:`explainlm.models.words.split_words`.

>>> ex = RationaleExample.from_tokens("e1", ["a", "good", "film."], "positive", [0, 1, 0])
>>> ex.words, ex.rationale
(['a', 'good', 'film', '.'], [0, 1, 0, 0])
"""

from __future__ import annotations

from explainlm.datasets.core import DATASETS, DatasetSpec, load_dataset, read_labelled
from explainlm.datasets.examples import RationaleExample, align_token_rationale, windows
from explainlm.datasets.loaders import (
    load_eraser,
    load_generic,
    load_rationale_csv,
    load_sst2,
    load_sst_trees,
)
from explainlm.datasets.tables import TextTable, read_table, read_texts

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "RationaleExample",
    "TextTable",
    "align_token_rationale",
    "load_dataset",
    "load_eraser",
    "load_generic",
    "load_rationale_csv",
    "load_sst2",
    "load_sst_trees",
    "read_labelled",
    "read_table",
    "read_texts",
    "windows",
]
