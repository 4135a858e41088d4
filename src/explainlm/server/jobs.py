"""Background jobs: a bounded pool of worker threads fed by a bounded queue.

``submit`` never blocks: when the queue is full it raises :class:`QueueFull` (HTTP 429 with
Retry-After). A job's work reports through ``job.reporter``, a :class:`JobProgress` (the service
layer's :class:`~explainlm.progress.Progress` that updates the job), which is also where a cancelled
job stops (cooperative cancellation: a running model pass finishes, the next step raises).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from explainlm.errors import UserError
from explainlm.progress import Cancelled, Progress
from explainlm.server.errors import ApiError, public_message

log = logging.getLogger(__name__)

MAX_KEPT = 500  # finished jobs kept for polling, oldest dropped first


class QueueFull(Exception):
    """Every worker is busy and the queue is full."""


class JobProgress(Progress):
    """A job's progress: each update sets the job's ``progress`` and ``message``.

    A job stopped because the server shuts down (:meth:`interrupt`) ends ``interrupted`` (its run
    can be resumed), not ``cancelled``.
    """

    def __init__(self, job: Job) -> None:
        self.job = job
        self._nested: Progress | None = None
        super().__init__()

    def interrupt(self) -> None:
        self.cancel("interrupted")

    def start(
        self, stage: str, total: float | None = None, *, estimate_s: float | None = None
    ) -> None:
        self._nested = None
        super().start(stage, total, estimate_s=estimate_s)

    def nested_start(self, child: Progress) -> None:
        """Nested work (the engine's passes) names the job's current step."""
        self._nested = child

    def render(self) -> None:
        self.job.progress = self.fraction
        done = f" {self.done:g}/{self.total:g}" if self.total else ""
        inner = self._nested
        if inner is not None and inner.total:
            done += f" · {inner.stage} {inner.done:g}/{inner.total:g}"
        self.job.message = f"{self.stage}{done}"


@dataclass
class Job:
    """One unit of work and its observable state."""

    id: str
    kind: str
    fn: Callable[[Job], Any]
    status: str = "queued"  # queued | running | finished | failed | cancelled | interrupted
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    error_status: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    future: Future[Any] = field(default_factory=Future)
    reporter: JobProgress = field(init=False)

    def __post_init__(self) -> None:
        self.reporter = JobProgress(self)

    @property
    def cancel_event(self) -> threading.Event:
        return self.reporter._cancel

    def step(self, done: float, total: float, message: str = "") -> None:
        """Report progress; raises :class:`~explainlm.progress.Cancelled` once cancelled."""
        self.reporter.check()
        self.progress = max(0.0, min(1.0, done / total)) if total else 0.0
        if message:
            self.message = message

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": round(self.progress, 4),
            "message": self.message,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if with_result:
            d["result"] = self.result
        return d


class JobQueue:
    """``workers`` threads take jobs from a queue of at most ``queue_size`` waiting jobs."""

    def __init__(self, workers: int = 2, queue_size: int = 8) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("need at least one worker and a non-negative queue size")
        self.workers = workers
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size + workers)
        self._queue_size = queue_size
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        if self._threads:
            return
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"explainlm-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        """Interrupt queued and running jobs (their runs end ``interrupted``) and stop the
        workers."""
        with self._lock:
            for job in self._jobs.values():
                if job.status in ("queued", "running"):
                    job.reporter.interrupt()
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def submit(self, kind: str, fn: Callable[[Job], Any]) -> Job:
        """Queue ``fn(job)``; raises :class:`QueueFull` when there is no room."""
        self.start()
        job = Job(id=secrets.token_hex(8), kind=kind, fn=fn)
        with self._lock:
            waiting = self._queue.qsize()
            idle = self.workers - self._busy
            if waiting >= self._queue_size + max(idle, 0):
                raise QueueFull()
            self._jobs[job.id] = job
            self._prune()
            self._queue.put_nowait(job)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, a running one at its next progress step."""
        job = self.get(job_id)
        job.reporter.cancel()
        with self._lock:
            if job.status == "queued":
                self._finish(job, "cancelled", error="cancelled")
        return job

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "workers": self.workers,
                "busy": self._busy,
                "queued": self._queue.qsize(),
                "queue_size": self._queue_size,
            }

    # ------------------------------------------------------------------------------ internals
    def _prune(self) -> None:
        done = [k for k, j in self._jobs.items() if j.finished_at is not None]
        for k in done[: max(0, len(self._jobs) - MAX_KEPT)]:
            del self._jobs[k]

    def _finish(
        self, job: Job, status: str, *, result: Any = None, error: str | None = None
    ) -> None:
        job.status, job.finished_at = status, time.time()
        job.result, job.error = result, error
        if status == "finished":
            job.progress = 1.0
            job.future.set_result(result)
        elif not job.future.done():
            exc = ApiError(job.error_status or 500, error or status)
            if status in ("cancelled", "interrupted"):
                exc = ApiError(409, f"the job was {status}")
            job.future.set_exception(exc)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.status != "queued":  # cancelled while waiting
                    continue
                job.status, job.started_at = "running", time.time()
                self._busy += 1
            try:
                result = job.fn(job)
            except Cancelled as e:
                status = getattr(e, "status", "cancelled")
                with self._lock:
                    self._finish(job, status, error=status)
            except ApiError as e:
                job.error_status = e.status
                with self._lock:
                    self._finish(job, "failed", error=e.message)
            except UserError as e:
                job.error_status = 400
                with self._lock:
                    self._finish(job, "failed", error=public_message(str(e)))
            except Exception as e:  # never let a job kill the worker; no traceback to clients
                log.exception("job %s (%s) failed", job.id, job.kind)
                with self._lock:
                    self._finish(job, "failed", error=f"internal error ({type(e).__name__})")
            else:
                with self._lock:
                    self._finish(job, "finished", result=result)
            finally:
                with self._lock:
                    self._busy -= 1
