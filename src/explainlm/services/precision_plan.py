"""The precision plan a run computes in, pinned for the run's whole life.

``precision="auto"`` means what this machine's cached measurement chose
(:func:`explainlm.models.autotune.resolve_precision`; the cache ``$EXPLAINLM_HOME/autotune.json``
is keyed by machine, thread count and model). That choice can change between two parts of a run:
the cache deleted or re-measured, another thread count, another actor. So a run resolves its plan
once, when it starts, and records it in its stored spec (``precision_plan``, next to the
``precision`` asked for); a resume — local, or every shard of a Ray job — runs that plan as it is
and never asks the cache again, so the resumed part is computed as the first part was.

An explicit precision (``fp32``, ``bf16``, ``int8``) resolves to the same plan everywhere; it is
recorded all the same, so every run says what it ran in.
"""

from __future__ import annotations

from typing import Any

from explainlm.services.base import ServiceContext, ServiceRequest

__all__ = ["pin_precision", "precision_task", "record_plan", "resolve_plan"]


def precision_task(task: Any) -> Any:
    """The task a plan is resolved on: a generator as generation measures it (its model's
    next-token scores, :class:`~explainlm.generation.scorer.NextTokenScorer`), else the task."""
    if getattr(task, "task", None) == "generator":
        from explainlm.generation.scorer import NextTokenScorer

        return NextTokenScorer(task.wrapper)
    return task


def resolve_plan(request: Any, task: Any) -> Any:
    """The :class:`~explainlm.models.precision.PrecisionPlan` of the request's passes on
    ``task``'s model: its pinned plan, else ``precision`` resolved now (``auto``: from this
    machine's measurement, measured once when there is none). ``mixed_precision`` (the earlier
    spelling) is bf16 autocast, as the engine runs it."""
    from explainlm.models.autotune import resolve_precision
    from explainlm.models.precision import PrecisionPlan

    if getattr(request, "mixed_precision", False):
        return PrecisionPlan("bf16", "bf16", "autocast", "bf16", reason="mixed_precision")
    return resolve_precision(request.pinned_precision(), precision_task(task))


def record_plan(store: Any, run_id: str, plan: dict[str, Any]) -> None:
    """Write ``plan`` into the run's stored spec (the top-level parameters and ``request``, the
    spec a resume or a repeat is built from)."""
    params = dict(store.get_run(run_id).params)
    params["precision_plan"] = plan
    if isinstance(params.get("request"), dict):
        params["request"] = {**params["request"], "precision_plan": plan}
    store.update_params(run_id, params)


def pin_precision(
    request: ServiceRequest, task: Any, ctx: ServiceContext | None = None, run: Any = None
) -> Any:
    """``request`` with its plan pinned: the one its run recorded (a resumed ``run``, whether or
    not the request was rebuilt from the stored spec), else resolved now on ``task``'s model and
    recorded with ``run`` (call it under the model's lock: ``auto`` may measure the model once)."""
    store = ctx.store if ctx is not None and run is not None else None
    if store is not None and getattr(request, "precision_plan", None) is None:
        stored = store.get_run(run.run_id).params.get("precision_plan") if run.resumed else None
        if stored is not None:
            return request.model_copy(update={"precision_plan": stored})
    plan = resolve_plan(request, task).to_dict()
    if store is not None and getattr(request, "precision_plan", None) is None:
        record_plan(store, run.run_id, plan)
    return request.model_copy(update={"precision_plan": plan})
