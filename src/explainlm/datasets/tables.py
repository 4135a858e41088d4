"""Generic labelled-text files: TSV, CSV and JSONL, with errors that name the file and the line.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "d.tsv"
>>> _ = p.write_text("sentence\\tlabel\\ngood film\\t1\\n")
>>> read_table(p, text_column="sentence", label_column="label").labels
['1']
"""

from __future__ import annotations

import codecs
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


DEFAULT_ENCODING = "utf-8-sig"  # UTF-8; files saved by spreadsheet programs start with a BOM


def text_encoding(encoding: str | None = None) -> str:
    """``encoding``, else ``EXPLAINLM_ENCODING`` (the CLI's ``explainlm --encoding``), else UTF-8;
    an unknown name is one :class:`UserError` line."""
    enc = encoding or os.environ.get("EXPLAINLM_ENCODING") or DEFAULT_ENCODING
    try:
        codecs.lookup(enc)
    except LookupError:
        raise UserError(
            f"unknown encoding {enc!r} (--encoding); e.g. utf-8, latin-1, cp1252, utf-16"
        ) from None
    return enc


def decoding_error(path: Path, encoding: str, err: UnicodeDecodeError) -> DataFormatError:
    """The undecodable line of ``path`` (found by decoding it line by line) as one error."""
    name = (
        "UTF-8"
        if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8")
        else encoding
    )
    hint = "if the file uses another encoding, pass it with --encoding (e.g. --encoding latin-1)"
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as e:
                byte = raw[e.start : e.start + 1].hex()
                return DataFormatError(
                    path, i, f"not {name} text (byte 0x{byte} at column {e.start + 1}); {hint}"
                )
    return DataFormatError(path, None, f"not {name} text ({err.reason}); {hint}")


def check_input_file(p: Path) -> None:
    """A readable regular file, or one line saying what it is instead."""
    if p.is_dir():
        raise UserError(f"{p} is a folder, not a file: pass a .tsv, .csv, .jsonl or .txt file")
    if not p.exists():
        raise UserError(f"file not found: {p}")
    if not p.is_file():
        raise UserError(f"{p} is not a regular file: pass a .tsv, .csv, .jsonl or .txt file")


def _rows(path: Path, kind: str, encoding: str) -> Iterator[tuple[int, dict[str, object]]]:
    with open(path, encoding=encoding, newline="") as fh:
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
    encoding: str | None = None,
) -> TextTable:
    """Read texts (and labels) from a TSV, CSV, JSONL or plain-text file.

    Empty texts, missing columns, malformed lines and bytes that are not text in ``encoding``
    (default UTF-8, see :func:`text_encoding`) raise :class:`DataFormatError` naming the file and
    the line.
    """
    p = Path(path)
    check_input_file(p)
    kind = _format_of(p, fmt)
    enc = text_encoding(encoding)
    try:
        return _read(p, kind, enc, text_column, label_column, extra_columns, limit)
    except UnicodeDecodeError as e:
        raise decoding_error(p, enc, e) from None


def _read(
    p: Path,
    kind: str,
    encoding: str,
    text_column: str,
    label_column: str | None,
    extra_columns: tuple[str, ...],
    limit: int | None,
) -> TextTable:
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    extra: dict[str, list[object]] = {c: [] for c in extra_columns}
    rows = _rows(p, kind, encoding)
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
