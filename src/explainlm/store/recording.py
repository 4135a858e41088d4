"""Recording a run's life in the store: start, heartbeat, finish, resume (one owner at a time), and
marking runs whose process died.

:class:`Recording` is the half of :class:`~explainlm.store.RunStore` that writes run records; it
needs ``transaction()``, ``connect()``, ``get_run()`` and ``delete_run()`` from the store.

Statuses: ``running`` → ``finished`` | ``failed`` | ``cancelled`` | ``interrupted`` (Ctrl-C, SIGTERM,
a server stopped mid-job, or a process found dead later). A :class:`~explainlm.errors.UserError`
raised inside a new run deletes the run again (bad input is not a failed run), unless results were
already stored (they are kept, the run marked ``failed``).
"""

from __future__ import annotations

import atexit
import platform
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from explainlm.errors import UserError
from explainlm.progress import Cancelled
from explainlm.store.lifecycle import Heartbeat, stale_reason, this_process
from explainlm.store.results import _json

_LIVE_LOCK = threading.Lock()
_LIVE: dict[str, Any] = {}  # run id -> the store recording it, for runs this process owns now
INTERRUPTED: list[tuple[str, str]] = []  # (run id, command) of runs interrupted in this process


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("explainlm", "torch", "transformers", "tokenizers", "duckdb"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


class RunBusy(UserError):
    """The run is owned by a live process (running, or being resumed elsewhere)."""


@dataclass
class RunContext:
    """A run in progress: its id, and a summary written when it closes."""

    store: Any
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    resumed: bool = False


def _status_of(exc: BaseException) -> tuple[str, str]:
    """The status and error text a run ends with when ``exc`` escapes it."""
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, and SIGTERM in the CLI (a subclass)
        return "interrupted", "interrupted"
    if isinstance(exc, Cancelled):
        status = getattr(exc, "status", "cancelled")
        return status, str(exc) or status
    return "failed", f"{type(exc).__name__}: {exc}"


class Recording:
    """Run records: see the module docstring."""

    def transaction(self) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def connect(self) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def get_run(self, run_id: str) -> Any:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def delete_run(self, run_id: str) -> None:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    def has_results(self, run_id: str) -> bool:  # pragma: no cover - provided by RunStore
        raise NotImplementedError

    # --------------------------------------------------------------------------- writes
    def start_run(
        self,
        command: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run (status ``running``, owned by this process) and return its id."""
        run_id = run_id or new_run_id()
        owner, now = this_process(), _now()
        with self.transaction() as con:
            con.execute(
                "INSERT INTO runs (run_id, created_at, command, model, status, params, versions, "
                "pid, host, pid_started, heartbeat_at) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    now,
                    command,
                    model,
                    _json(dict(params or {})),
                    _json(package_versions()),
                    owner.pid,
                    owner.host,
                    owner.started,
                    now,
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

    def update_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Replace a run's stored job spec (e.g. facts learnt while running)."""
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET params = ? WHERE run_id = ?", [_json(dict(params)), run_id]
            )

    def heartbeat(self, run_id: str) -> None:
        """Refresh the heartbeat of a run this process owns."""
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET heartbeat_at = ? WHERE run_id = ? AND pid = ? AND status = 'running'",
                [_now(), run_id, this_process().pid],
            )

    # ------------------------------------------------------------------------ lifecycle
    @contextmanager
    def recorded_run(
        self,
        command: str,
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        resume: str | None = None,
    ) -> Iterator[RunContext]:
        """Start a run (or take over ``resume``), keep its heartbeat while the block runs, and close
        it as finished, failed, interrupted or cancelled.

        Results written before an exception stay in the store (each write is its own transaction).
        A :class:`UserError` in a new run deletes it (bad input is not recorded as a failed run);
        in a resumed run it puts the run back as it was.
        """
        if resume is not None:
            before = self.claim_run(resume, command=command)
            run_id = before.run_id
        else:
            before = None
            run_id = self.start_run(command, model=model, params=params)
        ctx = RunContext(self, run_id, command=command, resumed=before is not None)
        beat = Heartbeat(lambda: self.heartbeat(run_id))
        with _LIVE_LOCK:
            _LIVE[run_id] = self
        try:
            yield ctx
        except UserError as e:
            if before is None and not self.has_results(run_id):
                self.delete_run(run_id)
            elif before is None:  # results were stored before the error: keep them
                self.finish_run(run_id, status="failed", summary=ctx.summary, error=str(e))
            else:
                self.finish_run(
                    run_id, status=before.status, summary=before.summary, error=before.error
                )
            raise
        except BaseException as e:
            status, error = _status_of(e)
            if status == "interrupted":
                INTERRUPTED.append((run_id, command))
            self.finish_run(run_id, status=status, summary=ctx.summary, error=error)
            raise
        else:
            self.finish_run(run_id, summary=ctx.summary)
        finally:
            beat.stop()
            with _LIVE_LOCK:
                _LIVE.pop(run_id, None)

    def claim_run(self, run_id: str, *, command: str | None = None) -> Any:
        """Take over an unfinished run to resume it: its record before the take-over.

        Refused (:class:`RunBusy`) while another live process owns it, so one run is resumed once
        at a time; refused when it is a run of another command. The check and the take-over are
        one transaction (the store's file lock serialises processes).
        """
        rec = self.get_run(run_id)
        if command is not None and rec.command != command:
            raise UserError(
                f"run {rec.run_id} is a {rec.command} run, not {_article(command)} {command} run: "
                f"resume it with `explainlm {rec.command} --resume {rec.run_id}`"
            )
        owner = this_process()
        with self.transaction() as con:
            row = con.execute(
                "SELECT status, pid, host, pid_started, heartbeat_at, created_at FROM runs "
                "WHERE run_id = ?",
                [rec.run_id],
            ).fetchone()
            keys = ("status", "pid", "host", "pid_started", "heartbeat_at", "created_at")
            cur = dict(zip(keys, row, strict=True))
            if cur["status"] == "running" and stale_reason(cur, _now()) is None:
                who = f"process {cur['pid']} on {cur['host']}" if cur["pid"] else "another process"
                raise RunBusy(
                    f"run {rec.run_id} is busy: {who} is running it now; wait for it to end "
                    "or stop that process, then resume"
                )
            con.execute(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, pid = ?, "
                "host = ?, pid_started = ?, heartbeat_at = ? WHERE run_id = ?",
                [owner.pid, owner.host, owner.started, _now(), rec.run_id],
            )
        return rec

    def reopen_run(self, run_id: str) -> Any:
        """Mark an unfinished run as running again (to resume it); returns its record."""
        return self.claim_run(run_id)

    def mark_stale_runs(self) -> list[Any]:
        """Mark ``running`` runs whose owner is gone as ``interrupted``; returns their records."""
        with self.connect() as con:
            cur = con.execute(
                "SELECT run_id, pid, host, pid_started, heartbeat_at, created_at FROM runs "
                "WHERE status = 'running'"
            )
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        now, marked = _now(), []
        for row in rows:
            if row["run_id"] in _LIVE:
                continue
            reason = stale_reason(row, now)
            if reason is None:
                continue
            with self.transaction() as con:
                con.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? "
                    "WHERE run_id = ? AND status = 'running' AND heartbeat_at IS NOT DISTINCT FROM ?",
                    [now, f"interrupted: {reason}", row["run_id"], row["heartbeat_at"]],
                )
            marked.append(self.get_run(row["run_id"]))
        return [r for r in marked if r.status == "interrupted"]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def live_runs() -> list[str]:
    """Ids of the runs this process is recording now."""
    with _LIVE_LOCK:
        return list(_LIVE)


def interrupt_live_runs(reason: str = "interrupted: the process stopped") -> list[str]:
    """Mark every run this process still records as ``interrupted`` (a server stopping with jobs
    still running, or the interpreter exiting); returns their ids."""
    with _LIVE_LOCK:
        live = list(_LIVE.items())
        _LIVE.clear()
    for run_id, store in live:
        with suppress(Exception):  # the store may be gone at exit; stale detection covers it
            store.finish_run(run_id, status="interrupted", error=reason)
    return [run_id for run_id, _ in live]


atexit.register(interrupt_live_runs)
