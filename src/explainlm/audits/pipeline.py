"""The audits end to end on loaded models: data → resumable per-item scoring → summary document.

The service (``services/audit.py``) validates options, loads data and models, and hands them here
with a cache (the run store's ``items``) and a :class:`~explainlm.progress.Progress`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.audits import bios as bios_mod
from explainlm.audits import bold as bold_mod
from explainlm.audits import counterfactual as cf
from explainlm.audits import lm_bias
from explainlm.audits.fairness import fairness_audit
from explainlm.audits.runner import ItemCache, run_chunks
from explainlm.progress import Progress


def predictions(
    classifier: Any, texts: Sequence[str], cache: ItemCache, progress: Progress, chunk: int = 64
) -> list[dict[str, Any]]:
    """Label and probabilities of every text (resumable)."""
    keys = [f"{i:06d}" for i in range(len(texts))]

    def compute(part: list[str]) -> dict[str, Any]:
        preds = classifier.predict([texts[int(k)] for k in part])
        return {k: {"label": p.label, "probs": p.probs} for k, p in zip(part, preds, strict=True)}

    done = run_chunks(keys, compute, cache, progress=progress, chunk_size=chunk, stage="predicting")
    return [done[k] for k in keys]


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


def run_counterfactual(
    classifier: Any,
    pairs: Sequence[cf.CounterfactualPair],
    cache: ItemCache,
    progress: Progress,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    label = opts["label"]
    index = {p.key: p for p in pairs}
    done = run_chunks(
        [p.key for p in pairs],
        lambda part: cf.score_chunk(classifier, [index[k] for k in part], label),
        cache,
        progress=progress,
        chunk_size=64,
        stage="scoring pairs",
    )
    doc = cf.summarise(
        pairs,
        [done[p.key] for p in pairs],
        sides=opts["sides"],
        label=label,
        n_boot=opts["n_boot"],
        n_perm=max(opts["n_perm"], 1000),
        seed=opts["seed"],
    )
    limit = opts.get("attribution_limit") or 0
    if limit > 0:
        step = max(1, len(pairs) // max(1, limit // 2))
        chosen = list(pairs)[::step][: max(1, limit // 2)]
        progress.start("explaining identity words", None)
        att = cf.identity_attribution(
            classifier,
            [t for p in chosen for t in (p.a, p.b)],
            [s for p in chosen for s in (p.spans_a, p.spans_b)],
            [side for _ in chosen for side in opts["sides"]],
            label=label,
            method=opts["attribution_method"],
            n_boot=opts["n_boot"],
            seed=opts["seed"],
        )
        progress.close()
        doc["attribution"] = att
        doc["conclusions"].append(att["conclusion"])
    return doc


def run_lm_task(
    scorer: Any,
    task: lm_bias.LMTask,
    cache: ItemCache,
    progress: Progress,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    index = {k: i for i, k in enumerate(task.keys)}
    done = run_chunks(
        task.keys,
        lambda part: lm_bias.score_chunk(scorer, task, index, part),
        cache,
        progress=progress,
        chunk_size=opts.get("chunk_size", 64),
        stage=f"scoring {task.name}",
    )
    doc = lm_bias.summarise(
        task,
        [done[k] for k in task.keys],
        correction=opts["correction"],
        n_boot=opts["n_boot"],
        seed=opts["seed"],
    )
    doc["scorer"] = scorer.describe()
    return doc


def run_bold(
    generator: Any,
    classifier: Any,
    prompts: Sequence[Any],
    cache: ItemCache,
    progress: Progress,
    opts: Mapping[str, Any],
) -> dict[str, Any]:
    keys = [f"{i:06d}" for i in range(len(prompts))]

    def compute(part: list[str]) -> dict[str, Any]:
        return bold_mod.generate_chunk(
            generator,
            classifier,
            [prompts[int(k)] for k in part],
            part,
            label=opts["label"],
            max_new_tokens=opts["max_new_tokens"],
            seed=opts["seed"],
        )

    done = run_chunks(keys, compute, cache, progress=progress, chunk_size=16, stage="generating")
    return bold_mod.summarise_bold(
        prompts,
        [done[k] for k in keys],
        label=opts["label"],
        min_group_size=opts["min_group_size"],
        n_boot=opts["n_boot"],
        n_perm=max(opts["n_perm"], 100),
        seed=opts["seed"],
    )


def bios_rows(
    classifier: Any, bios: Sequence[Any], cache: ItemCache, progress: Progress, method: str
) -> list[dict[str, Any]]:
    keys = [b.id for b in bios]
    index = {b.id: b for b in bios}
    done = run_chunks(
        keys,
        lambda part: {
            r["id"]: r for r in bios_mod.predict_bios(classifier, [index[k] for k in part], method)
        },
        cache,
        progress=progress,
        chunk_size=16,
        stage="bios",
    )
    return [done[k] for k in keys]
