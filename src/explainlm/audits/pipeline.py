"""The audits end to end on loaded models: a plan's stages of resumable per-item work, then its
summary document (see :mod:`explainlm.audits.plans`).

The service (``services/audit.py``) validates options, reads the data and hands the plan here with
a model provider, a cache (the run store's ``items``) and a :class:`~explainlm.progress.Progress`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.audits.fairness import fairness_audit
from explainlm.audits.runner import ItemCache, PrefixCache, run_chunks
from explainlm.progress import Progress


def run_plan(plan: Any, models: Any, progress: Progress, cache: ItemCache) -> dict[str, Any]:
    """Load the plan's models, compute each stage chunk by chunk (cached), summarise."""
    loaded = plan.load(models)
    facts = plan.facts(loaded)
    payloads: dict[str, dict[str, Any]] = {}
    for stage in plan.stages(facts):

        def compute(part: list[str], stage: Any = stage) -> Mapping[str, Any]:
            return stage.compute(loaded, part)

        payloads[stage.id] = run_chunks(
            stage.keys,
            compute,
            PrefixCache(cache, stage.prefix) if stage.prefix else cache,
            progress=progress,
            chunk_size=stage.chunk_size or max(1, len(stage.keys)),
            stage=stage.label or stage.id,
        )
    return plan.summarise(facts, payloads)


def predict_chunk(classifier: Any, texts: Sequence[str], keys: list[str]) -> dict[str, Any]:
    """Label and probabilities of the texts at ``keys`` (their indices, ``%06d``)."""
    preds = classifier.predict([texts[int(k)] for k in keys])
    return {k: {"label": p.label, "probs": p.probs} for k, p in zip(keys, preds, strict=True)}


def run_fairness(
    groups: Mapping[str, Sequence[Any]],
    gold: Sequence[str] | None,
    predicted: Sequence[str],
    probs: Sequence[Mapping[str, float]] | None,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    return fairness_audit(
        groups,
        predicted,
        gold,
        probs,
        positive_labels=opts["positive_labels"],
        intersections=opts["intersections"],
        min_group_size=opts["min_group_size"],
        n_boot=opts["n_boot"],
        n_perm=opts["n_perm"],
        level=opts["level"],
        correction=opts["correction"],
        seed=opts["seed"],
    )
