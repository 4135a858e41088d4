"""The result dataset of a dataset job: one Parquet file per shard, written atomically.

Each row is one output record (an explanation, a prediction) or one failed input row:
``row`` (the input row, 0-based), ``seq`` (its place among the row's records: the method's),
``error`` (``None`` unless the row failed), ``payload`` (the record as JSON, which reloads every
number exactly) and the job's typed columns (``method``, ``scores``, …) for analysis with any
Parquet reader (pandas, DuckDB, Spark, Ray Data).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from explainlm.services.dataset_jobs import record_payload


def shard_key(k: int) -> str:
    return f"{k:06d}"


def shard_file(k: int) -> str:
    return f"part-{shard_key(k)}.parquet"


def write_shard(
    folder: str,
    k: int,
    start: int,
    records: Sequence[dict[str, Any]],
    errors: dict[int, str],
    columns: Sequence[str],
) -> str:
    """Write shard ``k`` (records' ``row`` relative to the shard) and return its file name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for r in records:
        typed = {c: r.get(c) for c in columns}
        row = {"row": start + int(r["row"]), "seq": int(r["seq"]), "error": None}
        rows.append({**row, "payload": record_payload(r), **typed})
    for i, message in sorted(errors.items()):
        blank = dict.fromkeys(columns)
        rows.append({"row": start + i, "seq": 0, "error": message, "payload": None, **blank})
    rows.sort(key=lambda r: (r["row"], r["seq"]))
    table = pa.Table.from_pylist(rows) if rows else pa.table({"row": pa.array([], pa.int64())})
    Path(folder).mkdir(parents=True, exist_ok=True)
    name = shard_file(k)
    tmp = Path(folder) / f".{name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, Path(folder) / name)  # a shard file is there whole or not at all
    return name


def read_records(folder: str, files: Iterable[str]) -> list[dict[str, Any]]:
    """The records of the given shard files, in input order (failed rows left out)."""
    import pyarrow.parquet as pq

    out: list[tuple[int, int, dict[str, Any]]] = []
    for name in files:
        table = pq.read_table(Path(folder) / name, columns=["row", "seq", "payload"])
        cols = [table.column(c).to_pylist() for c in ("row", "seq", "payload")]
        for row, seq, payload in zip(*cols, strict=True):
            if payload is not None:
                out.append((row, seq, json.loads(payload)))
    out.sort(key=lambda t: (t[0], t[1]))
    return [{k: v for k, v in rec.items() if k not in ("row", "seq")} for _, _, rec in out]
