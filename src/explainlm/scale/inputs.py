"""The input of a dataset job, read by Ray Data and cut into shards in the local run's order.

Texts are normalised as the local reader does (``explainlm.datasets.read_table``: stripped, blank
lines of plain-text files skipped); an empty or non-text value is kept as ``None`` so its row is
recorded as failed instead of failing the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explainlm.errors import UserError

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".txt": "txt",
}


def input_format(path: str) -> str:
    """The format of a file, or of the files in a folder (a Parquet dataset, say)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"file not found: {p}")
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    kinds = {FORMATS.get(f.suffix.lower()) for f in files if not f.name.startswith((".", "_"))}
    kinds.discard(None)
    if len(kinds) != 1:
        known = ", ".join(sorted(FORMATS))
        raise UserError(f"{p}: cannot tell the input format (one of {known} expected)")
    return str(kinds.pop())


def _read(path: str, kind: str, column: str) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ray.data

    if kind == "parquet":
        return ray.data.read_parquet(path)
    if kind in ("csv", "tsv"):
        parse = pacsv.ParseOptions(
            delimiter="\t" if kind == "tsv" else ",",
            quote_char=False if kind == "tsv" else '"',
            newlines_in_values=kind == "csv",
        )
        convert = pacsv.ConvertOptions(column_types={column: pa.string()})
        return ray.data.read_csv(path, parse_options=parse, convert_options=convert)
    if kind == "jsonl":
        return ray.data.read_json(path, lines=True)
    return ray.data.read_text(path, drop_empty_lines=True)


def open_input(request: Any) -> tuple[Any, int]:
    """The request's texts as a materialised Ray dataset of one column ``text``, and its length."""
    import ray.data

    texts = getattr(request, "texts", None)
    if texts and request.input:
        raise UserError("--backend ray reads either TEXT arguments or --input, not both")
    if request.input:
        kind = input_format(request.input)
        column = "text" if kind == "txt" else request.text_column
        ds = _read(request.input, kind, column)
        if request.limit is not None:
            ds = ds.limit(request.limit)
        if kind != "parquet":  # a text format's schema is known once read: read it once
            ds = ds.materialize()
        names = ds.schema().names
        if column not in names:
            raise UserError(f"{request.input}: no column {column!r} (columns: {', '.join(names)})")
        ds = ds.select_columns([column])
        if column != "text":
            ds = ds.rename_columns({column: "text"})
    elif texts:
        ds = ray.data.from_items([{"text": t} for t in texts])
        if request.limit is not None:
            ds = ds.limit(request.limit)
    else:
        raise UserError("no text given: pass TEXT arguments or --input FILE")
    ds = ds.materialize()
    n = ds.count()
    if n == 0:
        raise UserError(f"{request.input}: no rows found")
    return ds, n


def normalised(value: Any) -> str | None:
    """A text as the local reader keeps it (stripped), or ``None`` for an empty or non-text value."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def text_shards(ds: Any, shard_rows: int) -> Iterator[tuple[int, int, list[str | None]]]:
    """``(k, start, texts)`` for rows ``[k * shard_rows, (k + 1) * shard_rows)``, in input order
    (streamed from the Ray dataset: the driver holds a few shards at a time)."""
    batches = ds.iter_batches(batch_size=shard_rows, batch_format="pyarrow", drop_last=False)
    for k, batch in enumerate(batches):
        yield k, k * shard_rows, [normalised(v) for v in batch.column("text").to_pylist()]


def index_shards(
    n_rows: int, shard_rows: int | None, sizes: list[int] | None = None
) -> Iterator[tuple[int, int, list[int]]]:
    """``(k, start, indices)`` of a job whose workers hold the examples (a benchmark, an audit):
    shards of ``shard_rows``, or of the given ``sizes`` (an audit's chunks, stage by stage)."""
    if sizes is None:
        assert shard_rows is not None
        sizes = [min(shard_rows, n_rows - s) for s in range(0, n_rows, shard_rows)]
    if sum(sizes) != n_rows:
        raise RuntimeError(f"shards of {sum(sizes)} rows for {n_rows} rows")
    start = 0
    for k, size in enumerate(sizes):
        yield k, start, list(range(start, start + size))
        start += size
