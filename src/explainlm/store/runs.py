"""DuckDB run store with schema versions, migrations and transactional writes.

>>> import tempfile, pathlib
>>> store = RunStore(pathlib.Path(tempfile.mkdtemp()) / "runs.duckdb")
>>> run = store.start_run("predict", model="tiny", params={"texts": 1})
>>> store.add_predictions(run, [{"text": "good", "label": "positive", "probs": {"positive": 0.9}}])
>>> store.finish_run(run)
>>> store.get_run(run).status
'finished'
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from explainlm.errors import UserError
from explainlm.paths import home_dir
from explainlm.progress import Cancelled
from explainlm.store.results import ResultTables, _json
from explainlm.store.schema import MIGRATIONS, SCHEMA_VERSION

_PROCESS_LOCK = threading.RLock()


def default_store_path() -> Path:
    """``$EXPLAINLM_HOME/runs.duckdb``."""
    return home_dir() / "runs.duckdb"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("explainlm", "torch", "transformers", "tokenizers", "duckdb"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


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


class RunStore(ResultTables):
    """A DuckDB file holding runs and their results. Each write is its own transaction.

    Connections are opened per operation, so several commands can share the store one after another
    and a crash never leaves a held lock behind.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -------------------------------------------------------------------------- plumbing
    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # DuckDB refuses two simultaneous attachments of one file from threads of one process
        # ("Unique file handle conflict"), so connections are serialised within the process.
        with _PROCESS_LOCK:
            yield from self._connect()

    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        delay = 0.05
        for attempt in range(40):
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as e:  # another process holds the file: wait a little
                if "lock" not in str(e).lower() or attempt == 39:
                    raise UserError(f"cannot open the run store {self.path}: {e}") from None
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)
        try:
            yield con
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

    def _migrate(self) -> None:
        with self.transaction() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)"
            )
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise UserError(
                    f"the run store {self.path} has schema {current}, newer than this explainlm "
                    f"({SCHEMA_VERSION}); upgrade explainlm"
                )
            for version, _name, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements:
                    con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])

    @property
    def schema_version(self) -> int:
        with self.connect() as con:
            return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------------------ runs
    def start_run(
        self,
        command: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run (status ``running``) and return its id."""
        run_id = run_id or datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        with self.transaction() as con:
            con.execute(
                "INSERT INTO runs (run_id, created_at, command, model, status, params, versions) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                [
                    run_id,
                    _now(),
                    command,
                    model,
                    _json(dict(params or {})),
                    _json(package_versions()),
                ],
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: str = "finished",
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ?, error = ? WHERE run_id = ?",
                [
                    status,
                    _now(),
                    _json(dict(summary)) if summary is not None else None,
                    error,
                    run_id,
                ],
            )

    @contextmanager
    def recorded_run(
        self,
        command: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        resume: str | None = None,
    ) -> Iterator[RunContext]:
        """Start a run (or reopen ``resume``), yield a :class:`RunContext`, and close the run as
        finished, failed, interrupted or cancelled.

        Results written before an exception stay in the store (each write is its own transaction).
        """
        if resume is not None:
            run_id = self.reopen_run(resume).run_id
        else:
            run_id = self.start_run(command, model=model, params=params)
        ctx = RunContext(self, run_id)
        try:
            yield ctx
        except KeyboardInterrupt:
            self.finish_run(
                ctx.run_id, status="interrupted", summary=ctx.summary, error="interrupted"
            )
            raise
        except Cancelled:
            self.finish_run(ctx.run_id, status="cancelled", summary=ctx.summary, error="cancelled")
            raise
        except BaseException as e:
            self.finish_run(
                ctx.run_id, status="failed", summary=ctx.summary, error=f"{type(e).__name__}: {e}"
            )
            raise
        self.finish_run(ctx.run_id, summary=ctx.summary)

    def reopen_run(self, run_id: str) -> RunRecord:
        """Mark an unfinished run as running again (to resume it); returns its record."""
        rec = self.get_run(run_id)
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET status = 'running', error = NULL WHERE run_id = ?", [rec.run_id]
            )
        return rec

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
        self, *, limit: int = 50, command: str | None = None, search: str | None = None
    ) -> list[RunRecord]:
        sql = f"SELECT {self._COLUMNS} FROM runs"
        where, args = [], []
        if command:
            where.append("command = ?")
            args.append(command)
        if search:
            where.append("(run_id ILIKE ? OR model ILIKE ? OR CAST(params AS VARCHAR) ILIKE ?)")
            args += [f"%{search}%"] * 3
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self.connect() as con:
            return [self._record(r) for r in con.execute(sql, args).fetchall()]


@dataclass
class RunContext:
    """A run in progress: its id, and a summary written when it closes."""

    store: RunStore | None
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)


def open_store(path: str | os.PathLike[str] | None = None) -> RunStore:
    """Open (creating or migrating) the run store at ``path`` or the default location."""
    return RunStore(path)
