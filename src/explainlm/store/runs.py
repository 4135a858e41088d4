"""DuckDB run store with schema versions, migrations and transactional writes.

>>> import tempfile, pathlib
>>> store = RunStore(pathlib.Path(tempfile.mkdtemp()) / "runs.duckdb")
>>> run = store.start_run("predict", model="tiny", params={"texts": 1})
>>> store.add_predictions(run, [{"text": "good", "label": "positive", "probs": {"positive": 0.9}}])
>>> store.finish_run(run)
>>> store.get_run(run).status
'finished'

A file that is not a readable DuckDB store (truncated, zero bytes, garbage, a folder) raises
:class:`StoreDamaged` when opened; :func:`explainlm.store.open_store` then moves it aside and starts
a fresh store (see :mod:`explainlm.store.health`).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from explainlm.errors import UserError
from explainlm.paths import home_dir
from explainlm.store.recording import Recording, RunContext, package_versions
from explainlm.store.results import ResultTables
from explainlm.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLE_KEYS

__all__ = [
    "RunContext",
    "RunRecord",
    "RunStore",
    "StoreDamaged",
    "default_store_path",
    "package_versions",
]

_PROCESS_LOCK = threading.RLock()


class StoreDamaged(UserError):
    """The run store's file cannot be read as a DuckDB store (or one of its tables is damaged)."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the run store {path} is damaged ({detail}); run `explainlm runs doctor` to move it "
            "aside and salvage its runs, or pass --no-store"
        )
        self.path, self.detail = path, detail


def default_store_path() -> Path:
    """``$EXPLAINLM_HOME/runs.duckdb``."""
    return home_dir() / "runs.duckdb"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_lock_error(e: BaseException) -> bool:
    text = str(e).lower()
    return "lock" in text and "conflict" in text or "could not set lock" in text


def _is_damage(e: BaseException) -> bool:
    text = str(e).lower()
    if isinstance(e, duckdb.IOException):
        return not _is_lock_error(e)
    return "corrupt" in text or "checksum" in text


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


@dataclass
class RunRecord:
    run_id: str
    created_at: str
    finished_at: str | None
    command: str
    model: str | None
    status: str
    params: dict[str, Any]
    versions: dict[str, str]
    summary: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunStore(ResultTables, Recording):
    """A DuckDB file holding runs and their results. Each write is its own transaction.

    Connections are opened per operation, so several commands can share the store one after another
    and a crash never leaves a held lock behind. Opening checks the file (every table's keys are
    read once) and migrates an older schema after copying the file to ``runs.duckdb.vN.bak``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, check: bool = True) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        if self.path.is_dir():
            raise StoreDamaged(self.path, "it is a folder, not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(
                f"cannot create the run store in {self.path.parent}: a file is in the way "
                "(set EXPLAINLM_HOME to a folder, or pass --no-store)"
            ) from None
        self._migrate()
        if check:
            self.check_tables()

    # -------------------------------------------------------------------------- plumbing
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # DuckDB refuses two simultaneous attachments of one file from threads of one process
        # ("Unique file handle conflict"), so connections are serialised within the process.
        with _PROCESS_LOCK:
            yield from self._connect()

    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        delay = 0.05
        for attempt in range(60):
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.Error as e:
                if not _is_lock_error(e):
                    raise StoreDamaged(self.path, _short(e)) from None
                if attempt == 59:  # another process holds the file: wait a little, then give up
                    raise UserError(
                        f"the run store {self.path} is busy (another process holds it); "
                        "try again, or pass --no-store"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
        try:
            yield con
        except duckdb.Error as e:  # a damaged block met while reading or writing
            if _is_damage(e):
                raise StoreDamaged(self.path, _short(e)) from None
            raise
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _stored_version(self) -> int:
        with self.connect() as con:
            exists = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
            ).fetchone()[0]
            if not exists:
                return 0
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _migrate(self) -> None:
        current = self._stored_version()
        if current > SCHEMA_VERSION:
            raise UserError(
                f"the run store {self.path} has schema {current}, newer than this explainlm "
                f"({SCHEMA_VERSION}); upgrade explainlm"
            )
        if current == SCHEMA_VERSION:
            return
        if current > 0:
            self.backup(f"v{current}.bak")
        with self.transaction() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)"
            )
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] if row and row[0] is not None else 0  # another process may have won
            for version, _name, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements:
                    con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])

    def backup(self, suffix: str) -> Path:
        """Copy the store file to ``runs.duckdb.<suffix>`` (before a migration); returns the copy."""
        target = self.path.with_name(f"{self.path.name}.{suffix}")
        with _PROCESS_LOCK:
            with self.connect() as con:
                con.execute("CHECKPOINT")  # the write-ahead log folded into the file
            shutil.copy2(self.path, target)
        return target

    def check_tables(self) -> None:
        """Read every table's key columns: a damaged store raises :class:`StoreDamaged` now, not
        in the middle of a job."""
        with self.connect() as con:
            for table, cols in TABLE_KEYS.items():
                try:
                    con.execute(f"SELECT {cols} FROM {table}").fetchall()
                except duckdb.CatalogException:
                    raise StoreDamaged(self.path, f"its table {table} is missing") from None

    @property
    def schema_version(self) -> int:
        return self._stored_version()

    # ------------------------------------------------------------------------------ runs
    def delete_run(self, run_id: str) -> None:
        """Remove a run and all its results (a run that ended in a user error)."""
        with self.transaction() as con:
            for table in ("predictions", "explanations", "items", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    def has_results(self, run_id: str) -> bool:
        """True when any result row of the run is stored."""
        with self.connect() as con:
            return any(
                con.execute(f"SELECT 1 FROM {t} WHERE run_id = ? LIMIT 1", [run_id]).fetchone()
                for t in ("predictions", "explanations", "items")
            )

    def _record(self, row: Sequence[Any]) -> RunRecord:
        run_id, created, finished, command, model, status, params, versions, summary, error = row
        return RunRecord(
            run_id,
            str(created),
            str(finished) if finished else None,
            command,
            model,
            status,
            json.loads(params) if params else {},
            json.loads(versions) if versions else {},
            json.loads(summary) if summary else None,
            error,
        )

    _COLUMNS = (
        "run_id, created_at, finished_at, command, model, status, params, versions, summary, error"
    )

    def get_run(self, run_id: str) -> RunRecord:
        with self.connect() as con:
            rows = con.execute(
                f"SELECT {self._COLUMNS} FROM runs WHERE run_id = ?", [run_id]
            ).fetchall()
            if not rows:
                # starts_with, not LIKE: "_" and "%" in the prefix are not wildcards
                like = con.execute(
                    f"SELECT {self._COLUMNS} FROM runs WHERE starts_with(run_id, ?) "
                    "ORDER BY created_at",
                    [run_id],
                ).fetchall()
                if len(like) == 1:
                    return self._record(like[0])
                if like:
                    shown = ", ".join(r[0] for r in like[:5]) + (", …" if len(like) > 5 else "")
                    raise UserError(
                        f"run id prefix {run_id!r} is ambiguous: {len(like)} runs match ({shown})"
                    )
                raise UserError(f"no run {run_id!r} in {self.path}")
        return self._record(rows[0])

    def list_runs(
        self,
        *,
        limit: int = 50,
        command: str | None = None,
        search: str | None = None,
        offset: int = 0,
    ) -> list[RunRecord]:
        sql = f"SELECT {self._COLUMNS} FROM runs"
        where, args = [], []
        if command:
            where.append("command = ?")
            args.append(command)
        if search:
            where.append(
                "(run_id ILIKE ? OR model ILIKE ? OR command ILIKE ? OR status ILIKE ? "
                "OR CAST(params AS VARCHAR) ILIKE ?)"
            )
            args += [f"%{search}%"] * 5
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self.connect() as con:
            return [self._record(r) for r in con.execute(sql, args).fetchall()]
