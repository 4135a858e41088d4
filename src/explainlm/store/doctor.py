"""``explainlm runs doctor``: check the run store, mark dead runs, and salvage damaged copies.

A damaged store is moved aside when opened (:mod:`explainlm.store.health`); the doctor then copies
every row it can still read from those copies (or from files named explicitly) into the current
store. A table that cannot be read whole is copied run by run, so one damaged block costs only the
runs stored in it. Rows already in the store are left alone, so salvaging twice is harmless; a
salvaged copy is renamed ``…salvaged-<time>`` and kept (delete it when you are satisfied).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from explainlm.store.health import damaged_copies, open_store
from explainlm.store.runs import RunStore

SALVAGE_TABLES = ("runs", "predictions", "explanations", "items")


@dataclass
class Salvage:
    """What was recovered from one damaged file."""

    path: str
    readable: bool
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    lost: dict[str, str] = field(default_factory=dict)  # table -> why (part of) it was lost
    renamed_to: str | None = None


@dataclass
class DoctorReport:
    store: str
    schema_version: int
    runs: int
    marked_interrupted: list[str]
    salvaged: list[Salvage]

    def to_json_doc(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _columns(con: Any, schema: str, table: str) -> list[str]:
    if schema == "main":  # the store's own catalog is named after its file
        schema = con.execute("SELECT current_database()").fetchone()[0]
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _copy_table(con: Any, table: str, report: Salvage) -> None:
    common = [c for c in _columns(con, "old", table) if c in _columns(con, "main", table)]
    if not common:
        report.lost[table] = "table missing"
        return
    cols = ", ".join(common)
    before = con.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0]
    try:
        con.execute(f"INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM old.{table}")
    except duckdb.Error as whole:  # copy run by run: only the damaged part is lost
        failed = 0
        try:
            ids = [r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM old.{table}").fetchall()]
        except duckdb.Error:
            ids = []
            failed = -1
        for run_id in ids:
            try:
                con.execute(
                    f"INSERT OR IGNORE INTO main.{table} ({cols}) "
                    f"SELECT {cols} FROM old.{table} WHERE run_id = ?",
                    [run_id],
                )
            except duckdb.Error:
                failed += 1
        why = str(whole).splitlines()[0][:120]
        report.lost[table] = (
            f"unreadable ({why})" if failed < 0 else f"{failed} run(s) unreadable ({why})"
        )
    report.rows[table] = con.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0] - before


def salvage(store: RunStore, damaged: Path) -> Salvage:
    """Copy every readable row of the store file ``damaged`` into ``store``."""
    report = Salvage(str(damaged), readable=False)
    with store.connect() as con:
        try:
            con.execute(f"ATTACH '{_quoted(damaged)}' AS old (READ_ONLY)")
        except duckdb.Error as e:
            report.lost["*"] = str(e).splitlines()[0][:160]
            return report
        report.readable = True
        try:
            for table in SALVAGE_TABLES:
                try:
                    _copy_table(con, table, report)
                except duckdb.Error as e:
                    report.lost[table] = str(e).splitlines()[0][:160]
        finally:
            con.execute("DETACH old")
    return report


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def doctor(
    path: str | os.PathLike[str] | None = None, files: list[str] | None = None
) -> DoctorReport:
    """Check (and repair) the store, mark dead runs, salvage damaged copies or ``files``."""
    messages: list[str] = []
    store = open_store(path, warn=messages.append)
    marked = [r.run_id for r in store.mark_stale_runs()]
    targets = [Path(f) for f in files] if files else damaged_copies(store.path)
    salvaged = []
    for target in targets:
        result = salvage(store, target)
        if not files and target.exists():
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            renamed = target.with_name(target.name.replace(".damaged-", ".salvaged-") + f"-{stamp}")
            os.replace(target, renamed)
            wal = target.with_name(target.name + ".wal")
            if wal.exists():
                os.replace(wal, renamed.with_name(renamed.name + ".wal"))
            result.renamed_to = str(renamed)
        salvaged.append(result)
    marked += [r.run_id for r in store.mark_stale_runs()]  # salvaged runs that were running
    n_runs = len(store.list_runs(limit=10**9))
    return DoctorReport(str(store.path), store.schema_version, n_runs, marked, salvaged)
