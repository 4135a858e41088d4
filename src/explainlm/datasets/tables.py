"""Generic labelled-text files: TSV, CSV and JSONL, with errors that name the file and the line.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.tsv"
>>> _ = p.write_text("sentence\\tlabel\\ngood film\\t1\\n")
>>> read_table(p, text_column="sentence", label_column="label").labels
['1']
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from explainlm.errors import DataFormatError, UserError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt"}


@dataclass
class TextTable:
    """Texts with optional labels and extra columns, read from one file."""

    path: Path
    texts: list[str]
    labels: list[str] | None = None
    lines: list[int] = field(default_factory=list)  # 1-based source line of each row
    extra: dict[str, list[object]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> TextTable:
        """The first ``n`` rows (all of them when ``n`` is None)."""
        if n is None:
            return self
        return TextTable(
            self.path,
            self.texts[:n],
            None if self.labels is None else self.labels[:n],
            self.lines[:n],
            {k: v[:n] for k, v in self.extra.items()},
        )


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UserError(
            f"{path}: unknown file type {path.suffix!r}; use .tsv, .csv, .jsonl or .txt"
        )
    return kind


def _rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, object]]]:
    # utf-8-sig: files saved by spreadsheet programs start with a byte-order mark
    with open(path, encoding="utf-8-sig", newline="") as fh:
        if kind == "txt":
            for i, line in enumerate(fh, start=1):
                if line.strip():  # blank lines are skipped, as in the other formats
                    yield i, {"text": line.rstrip("\n")}
            return
        if kind == "jsonl":
            for i, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(path, i, f"invalid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise DataFormatError(path, i, "each line must be a JSON object")
                yield i, obj
            return
        reader = csv.reader(
            fh,
            delimiter="\t" if kind == "tsv" else ",",
            quoting=csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL,
        )
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError(path, 1, "the file is empty (a header row is expected)") from None
        header = [h.strip() for h in header]
        end = reader.line_num
        for row in reader:
            # a quoted field may span lines: report the line the row starts on
            line, end = end + 1, reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    path,
                    line,
                    f"expected {len(header)} fields ({', '.join(header)}), found {len(row)}",
                )
            yield line, dict(zip(header, row, strict=True))


def read_table(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str | None = None,
    extra_columns: tuple[str, ...] = (),
    fmt: str | None = None,
    limit: int | None = None,
) -> TextTable:
    """Read texts (and labels) from a TSV, CSV, JSONL or plain-text file.

    Empty texts, missing columns and malformed lines raise :class:`DataFormatError`
    naming the file and the line.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file not found: {p}")
    kind = _format_of(p, fmt)
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    extra: dict[str, list[object]] = {c: [] for c in extra_columns}
    rows = _rows(p, kind)
    for line, row in rows:
        if limit is not None and len(texts) >= limit:
            break
        for col in (text_column, *([label_column] if label_column else []), *extra_columns):
            if col not in row:
                raise DataFormatError(
                    p, line, f"no column {col!r} (columns: {', '.join(map(str, row))})"
                )
        text = row[text_column]
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(p, line, f"empty or non-text value in column {text_column!r}")
        texts.append(text.strip())
        lines.append(line)
        if label_column:
            label = row[label_column]
            if label is None or (isinstance(label, str) and not label.strip()):
                raise DataFormatError(p, line, f"empty label in column {label_column!r}")
            labels.append(str(label).strip())
        for c in extra_columns:
            extra[c].append(row[c])
        if limit is not None and len(texts) >= limit:
            break  # do not parse (and fail on) rows past the limit
    rows.close()
    if not texts:
        raise DataFormatError(p, None, "no rows found")
    return TextTable(p, texts, labels if label_column else None, lines, extra)


def read_texts(path: str | os.PathLike[str], text_column: str = "text") -> list[str]:
    """Only the texts of a file (see :func:`read_table`)."""
    return read_table(path, text_column=text_column).texts
