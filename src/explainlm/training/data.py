"""Where training and evaluation read labelled data: files, ``NAME:SPLIT`` datasets, ``biosbias:SPLIT``."""

from __future__ import annotations

import os
from typing import Any

from explainlm.datasets.core import read_labelled


def read_source(
    source: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    limit: int | None = None,
) -> Any:
    """A labelled table from a file, a dataset ``NAME:SPLIT``, or ``biosbias:SPLIT``."""
    from explainlm.datasets.fairness import read_fairness_labelled

    table = read_fairness_labelled(str(source))
    if table is not None:
        return table.head(limit)
    return read_labelled(source, text_column=text_column, label_column=label_column, limit=limit)
