"""Reading the fairness data files: where they live (``<data>/fairness/``, ``<data>/biosbias/``),
JSON lines, and one-line errors naming the file and line of a malformed row."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainlm.errors import DataFormatError, UserError
from explainlm.paths import data_dir as resolve_data_dir


def fairness_path(relative: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<data>/relative``; a one-line error when it is missing."""
    p = resolve_data_dir(data_dir) / relative
    if not p.exists():
        raise UserError(f"data not found: {p}")
    return p


def read_jsonl_objects(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each non-blank line of a JSON-lines file."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, i, f"invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(path, i, "each line must be a JSON object")
            rows.append((i, obj))
    return rows


def require_fields(obj: dict[str, Any], keys: Sequence[str], path: Path, line: int) -> None:
    """A :class:`DataFormatError` naming the file, line and missing fields, if any is missing."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataFormatError(path, line, f"missing field(s): {', '.join(missing)}")
