"""Comprehensiveness and sufficiency of each explanation of one input (ERASER, DeYoung et al. 2020).

Uses :func:`explainlm.evaluation.evaluate` when the evaluation package is installed; otherwise
:func:`eraser_aopc` computes the same AOPC scores with the engine's
:func:`~explainlm.methods.perturbation.evaluate_masks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
METRICS = ("comprehensiveness", "sufficiency")


def faithfulness(
    explanations: Sequence[Any],
    classifier: Any,
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> list[dict[str, Any]]:
    """One ``{index, method, comprehensiveness, sufficiency, source}`` per explanation.

    f is the probability of the explained label; top-k% units by score (k ≥ 1 unit per bin) are
    removed (comprehensiveness, higher is better) or kept alone (sufficiency, lower is better).
    """
    try:
        from explainlm.evaluation import evaluate
    except ImportError:
        return eraser_aopc(explanations, classifier, max_batch_tokens=max_batch_tokens)
    params = {m: {"bins": BINS, "rounding": "ceil"} for m in METRICS}
    res = evaluate(
        list(explanations),
        METRICS,
        classifier,
        metric_params=params,
        example_ids=list(range(len(explanations))),
        max_batch_tokens=max_batch_tokens,
        agreement=False,
    )
    out = [
        {"index": i, "method": e.method, "source": "explainlm.evaluation"}
        for i, e in enumerate(explanations)
    ]
    for r in res.rows:
        out[int(r["example"])][r["metric"]] = r.get("value")
    return out


def eraser_aopc(
    explanations: Sequence[Any],
    classifier: Any,
    *,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> list[dict[str, Any]]:
    """The fallback: AOPC comprehensiveness/sufficiency over :data:`BINS` with the engine."""
    from explainlm.engine import Engine
    from explainlm.methods.perturbation import evaluate_masks
    from explainlm.targets import ClassTarget

    engine = Engine(classifier, ClassTarget("prob"), max_batch_tokens=max_batch_tokens)
    out = []
    for i, e in enumerate(explanations):
        item = engine.prepare([e.text])[0]
        item = _with_label(engine, item, classifier.label_index(e.label))
        scores = _feature_scores(e)
        n = scores.size
        order = np.argsort(-scores, kind="stable")
        ks = sorted({min(n, max(1, math.ceil(b * n - 1e-9))) for b in BINS}) if n else []
        drop = np.ones((len(ks), n), dtype=bool)
        keep = np.zeros((len(ks), n), dtype=bool)
        for row, k in enumerate(ks):
            drop[row, order[:k]] = False
            keep[row, order[:k]] = True
        row: dict[str, Any] = {"index": i, "method": e.method, "source": "explainlm.server"}
        if not ks:
            row.update(comprehensiveness=None, sufficiency=None)
        else:
            v_drop, v_keep = evaluate_masks(
                engine, [item, item], [drop, keep], e.granularity, "remove"
            )
            row["comprehensiveness"] = float(np.mean(item.target_value - v_drop))
            row["sufficiency"] = float(np.mean(item.target_value - v_keep))
        out.append(row)
    return out


def _with_label(engine: Any, item: Any, idx: int) -> Any:
    """The item with its target set to the probability of label ``idx``."""
    import dataclasses

    import torch

    value = engine.target.value(item.scores.unsqueeze(0), torch.tensor([idx]))
    return dataclasses.replace(item, label_idx=idx, target_value=float(value[0]))


def _feature_scores(e: Any) -> np.ndarray:
    if e.granularity == "word":
        return np.asarray(e.word_scores, dtype=np.float64)
    special = e.token_special or [False] * len(e.token_scores or [])
    return np.asarray(
        [v for v, sp in zip(e.token_scores or [], special, strict=True) if not sp], dtype=np.float64
    )
