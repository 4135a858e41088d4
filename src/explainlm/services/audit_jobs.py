"""The audits as dataset jobs (``explainlm audit … --backend ray``).

An audit's model work is its plan's stages of items (:mod:`explainlm.audits.plans`): pairs scored,
rows predicted, prompts continued, bios explained. A cluster backend computes each stage's chunks
(the local run's chunks) as shards on its actors — each actor reads the data and loads the models
once, and reports the facts the statistics need (the models' labels, …) and the shards' sizes —
and stores every item as the local run caches it (items of kind ``audit``). The statistics
(bootstrap CIs, tests, group metrics) need every item: the driver computes them from the merged
items with the plan's own ``summarise``, so the document is the local run's.

Group fairness on given predictions (``--prediction-column``) has no model work to distribute and
is refused on a cluster (it runs in seconds locally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainlm.errors import UserError

ITEM_KIND = "audit"  # as the local run's cache (services/audit.py)


@dataclass
class AuditState:
    """A worker's plan, models, facts and its items in order (``units[row] = (stage, key)``)."""

    loaded: dict[str, Any]
    facts: dict[str, Any]
    units: list[tuple[Any, str]]
    shard_sizes: list[int]


def check(request: Any) -> None:
    """On the driver, before any model loads: the data (one-line errors) and the options."""
    from explainlm.audits import kinds

    if request.command == "audit-fairness" and request.model is None:
        raise UserError(
            "audit fairness on given predictions has no model work to distribute: "
            "run it without --backend ray"
        )
    kinds.prepare(request)


def load(request: Any, models: Any) -> AuditState:
    """Read the data, load the models, learn the facts and lay out the stages' items."""
    from explainlm.audits import kinds
    from explainlm.audits.plans import plan_for

    plan = plan_for(request, kinds.prepare(request))
    loaded = plan.load(models)
    facts = plan.facts(loaded)
    stages = plan.stages(facts)
    units = [(s, k) for s in stages for k in s.keys]
    sizes = [len(c) for s in stages for c in s.chunks()]
    return AuditState(loaded, facts, units, sizes)


def describe(request: Any, state: AuditState) -> dict[str, Any]:
    return {"n_rows": len(state.units), "shard_sizes": state.shard_sizes, "facts": state.facts}


def compute(request: Any, state: AuditState, rows: Sequence[int]) -> list[dict[str, Any]]:
    """One shard: one chunk of one stage, computed as the local run computes it."""
    stage = state.units[rows[0]][0]
    if any(state.units[i][0] is not stage for i in rows):  # pragma: no cover - sizes guarantee it
        raise RuntimeError("a shard spans two stages of the audit")
    keys = [state.units[i][1] for i in rows]
    got = stage.compute(state.loaded, keys)
    return [
        {"row": j, "seq": 0, "key": stage.prefix + k, "item": got[k]} for j, k in enumerate(keys)
    ]


def store_item(row: int, record: dict[str, Any]) -> tuple[str, Any]:
    from explainlm.audits.stats import clean

    return record["key"], clean(record["item"])  # as the local cache stores it


def merge(
    request: Any, run_id: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> Any:
    """The audit's result: the plan's statistics over every merged item, on this machine."""
    from explainlm.audits import kinds
    from explainlm.audits.plans import plan_for
    from explainlm.services.audit import audit_result

    prep = kinds.prepare(request)
    plan = plan_for(request, prep)
    facts = meta["facts"]
    items = {r["key"]: r["item"] for r in records}
    payloads, missing = {}, 0
    for stage in plan.stages(facts):
        got = {k: items[stage.prefix + k] for k in stage.keys if stage.prefix + k in items}
        missing += len(stage.keys) - len(got)
        payloads[stage.id] = got
    if missing:
        raise UserError(
            f"{missing} items of run {run_id} failed: the audit's statistics need every item "
            f"(fix the cause, then --resume {run_id})"
        )
    doc = kinds.with_notes(plan.summarise(facts, payloads), prep)
    return audit_result(request, str(run_id), doc)


def finish(request: Any, store: Any, run_id: str, result: Any) -> dict[str, Any]:
    from explainlm.services.audit import record_report

    return record_report(store, result)


def input_paths(request: Any) -> list[str]:
    """The audit's data files (built-in data sets such as ``eec`` are not files)."""
    names = [getattr(request, "data", None), getattr(request, "pairs_file", None)]
    return [n for n in names if n and Path(n).is_file()]
