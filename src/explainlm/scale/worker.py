"""The actor of the pool: loads the model once, then computes shards with the services' code.

A shard is computed whole (as the local run computes that chunk). On out-of-memory it is retried
with half the token budget, down to :data:`MIN_BUDGET`; any other error is retried
``max_retries`` times, then the shard is computed row by row so only the rows that keep failing
(a bad text) are recorded, with their error, and the rest is kept.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from explainlm.scale.outputs import write_shard
from explainlm.services.base import LocalModels
from explainlm.services.dataset_jobs import JOBS, DatasetJob

MIN_BUDGET = 64  # tokens per pass: below this, out-of-memory is an error of the shard
EMPTY_TEXT = "empty or non-text value in the text column"


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or host allocation failure (torch raises both as RuntimeError subclasses)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def compute_with_backoff(
    job: DatasetJob, request: Any, task: Any, texts: Sequence[Any], budget: int
) -> tuple[list[dict[str, Any]], int]:
    """``job.compute`` on ``texts``, halving the token budget after each out-of-memory error."""
    while True:
        req = request.model_copy(update={"max_batch_tokens": budget}) if budget else request
        try:
            return job.compute(req, task, texts), budget
        except Exception as e:
            if not is_out_of_memory(e) or not budget or budget // 2 < MIN_BUDGET:
                raise
            _release_memory()
            budget //= 2


def compute_shard(
    job: DatasetJob, request: Any, task: Any, texts: Sequence[Any], *, max_retries: int
) -> dict[str, Any]:
    """Records of one shard (rows relative to it), failed rows, attempts and the budget used."""
    errors = {i: EMPTY_TEXT for i, t in enumerate(texts) if t is None}
    good = [i for i, t in enumerate(texts) if t is not None]
    budget = int(getattr(request, "max_batch_tokens", 0) or 0)
    last: Exception | None = None
    for attempt in range(1, max_retries + 2):
        try:
            recs, budget = compute_with_backoff(
                job, request, task, [texts[i] for i in good], budget
            )
        except Exception as e:  # retried; a deterministic failure ends row by row below
            last = e
            continue
        for r in recs:
            r["row"] = good[r["row"]]
        return {"records": recs, "errors": errors, "attempts": attempt, "budget": budget}
    records: list[dict[str, Any]] = []
    for i in good:  # isolate the rows that keep failing
        try:
            one, _ = compute_with_backoff(job, request, task, [texts[i]], budget)
        except Exception as e:
            errors[i] = f"{type(e).__name__}: {e}"
            continue
        records += [{**r, "row": i} for r in one]
    return {
        "records": records,
        "errors": errors,
        "attempts": max_retries + 1,
        "budget": budget,
        "shard_error": f"{type(last).__name__}: {last}",
    }


class ShardWorker:
    """One model copy. Made a Ray actor by :func:`explainlm.scale.pool.make_actor`."""

    def __init__(self, command: str, spec: dict[str, Any], threads: int | None = None) -> None:
        started = time.monotonic()
        if threads is not None:  # the actor's CPUs (Ray keeps a driver's OMP_NUM_THREADS)
            import torch

            torch.set_num_threads(threads)
        self.job = JOBS[command]
        self.request = self.job.request.model_validate(spec)
        self.models = LocalModels(self.request.device)
        self.state = self.job.load(self.request, self.models)  # the model, once per actor
        self.load_s = time.monotonic() - started

    def precision_plan(self) -> dict[str, Any] | None:
        """The precision plan of this worker's passes (``None``: a job without one): the pinned
        one, else resolved now on its model (``auto``: measured once if this machine has no
        measurement) and pinned."""
        if self.job.plan_model is None:
            return None
        if self.request.precision_plan is None:
            from explainlm.services.precision_plan import resolve_plan

            plan = resolve_plan(self.request, self.job.plan_model(self.state))
            self.pin(plan.to_dict())
        return dict(self.request.precision_plan)

    def pin(self, plan: dict[str, Any]) -> None:
        """Compute every later shard in ``plan`` (the run's plan, from the driver)."""
        self.request = self.request.model_copy(update={"precision_plan": plan})

    def describe(self) -> dict[str, Any]:
        """What loading taught this worker (a benchmark's number of examples, …)."""
        return self.job.describe(self.request, self.state) if self.job.describe else {}

    def info(self) -> dict[str, Any]:
        import torch

        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "torch_threads": torch.get_num_threads(),
            "load_s": self.load_s,
        }

    def run_shard(
        self,
        k: int,
        start: int,
        texts: list[Any],
        budget: int | None,
        max_retries: int,
        output: str,
    ) -> dict[str, Any]:
        """Compute shard ``k`` (input rows from ``start``: texts, or example indices), write its
        file, return its index row (with the records as store items when the job keeps them)."""
        started = time.monotonic()
        request = self.request
        if budget is not None:  # the driver lowered it after this shard ran out of memory
            request = request.model_copy(update={"max_batch_tokens": budget})
        out = compute_shard(self.job, request, self.state, texts, max_retries=max_retries)
        name = write_shard(output, k, start, out["records"], out["errors"], self.job.columns)
        report = {
            "shard": k,
            "start": start,
            "rows": len(texts),
            "records": len(out["records"]),
            "failed_rows": [
                {"row": start + i, "error": m} for i, m in sorted(out["errors"].items())
            ],
            "file": name,
            "attempts": out["attempts"],
            "max_batch_tokens": out["budget"],
            "seconds": round(time.monotonic() - started, 4),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        if "shard_error" in out:
            report["shard_error"] = out["shard_error"]
        if self.job.item_kind:  # the records as the local run stores them
            report["items"] = dict(self.job.store_item(start + r["row"], r) for r in out["records"])
        return report
