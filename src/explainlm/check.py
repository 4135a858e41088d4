"""The faithfulness check computed with every explanation: does removing what the explanation calls
most important change the prediction, and does keeping only that preserve it?

For each explanation, features (words or text tokens) are ranked by score, highest first, and for
each removal fraction q (default 10%, 20%, 50%) the top ``k = ⌈q·d⌉`` features form a set S_q
(:func:`explainlm.engine.ranking.top_k_sets`, ``rounding="ceil"``: every text gets at
least one feature; a fraction whose set equals the previous one's is skipped). With f the
explanation's target (for generation: the target summed over the generated tokens) and features
removed as ``remove`` does (deleted, the text re-tokenized):

* comprehensiveness = mean_q [f(x) − f(x without S_q)]   (higher: the ranking found what matters)
* sufficiency       = mean_q [f(x) − f(only S_q)]        (lower: the top features suffice)

These are ERASER's AOPC definitions (DeYoung et al., 2020), the ones of the ``comprehensiveness``
and ``sufficiency`` metrics of :mod:`explainlm.evaluation` with ``bins=fractions,
rounding="ceil"``. The same quantities for ``random_rankings`` random rankings of the text's
features (seeded by the text's identity, shared by every method on the text) give the random
baseline: a ranking no better than chance has comprehensiveness near it. All masks of all
explanations of a text are scored in the engine's shared passes, and masks a method already scored
(occlusion's leave-one-out rows, KernelSHAP's coalitions) are not scored again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainlm.engine.contract import AttributionEngine, item_rng
from explainlm.engine.ranking import top_k_sets
from explainlm.errors import UserError

CHECK_FRACTIONS = (0.1, 0.2, 0.5)


@dataclass(frozen=True)
class CheckConfig:
    """How the check is computed: removal ``fractions``, random rankings per text, ``replace``."""

    fractions: tuple[float, ...] = CHECK_FRACTIONS
    random_rankings: int = 1
    replace: str = "remove"

    def __post_init__(self) -> None:
        if not self.fractions or any(not 0 < float(q) <= 1 for q in self.fractions):
            raise UserError("check fractions must be in (0, 1]")
        if self.random_rankings < 0:
            raise UserError("check random_rankings must be ≥ 0")


def as_check_config(check: bool | CheckConfig | None) -> CheckConfig | None:
    """``explain(check=…)``: ``True`` (the default check), ``False``/``None`` (off), or a config."""
    if isinstance(check, CheckConfig):
        return check
    return CheckConfig() if check else None


def _masks(d: int, sets: Sequence[np.ndarray]) -> np.ndarray:
    """Comprehensiveness rows (the set removed), then sufficiency rows (only the set kept)."""
    if not sets:
        return np.zeros((0, d), dtype=bool)
    comp = np.ones((len(sets), d), dtype=bool)
    suff = np.zeros((len(sets), d), dtype=bool)
    for b, idx in enumerate(sets):
        comp[b, idx] = False
        suff[b, idx] = True
    return np.concatenate([comp, suff])


def attach_checks(
    engine: AttributionEngine,
    items: Sequence[Any],
    results_by_method: Sequence[Sequence[Any]],
    granularity: str,
    config: CheckConfig | None = None,
) -> None:
    """Compute the check of every result (``results_by_method[m][i]`` explains ``items[i]``) and
    store it in the result's ``check``."""
    config = config or CheckConfig()
    start = time.perf_counter()
    fractions = tuple(float(q) for q in config.fractions)
    plans: list[list[tuple[int, list[np.ndarray]]]] = []  # per item: (first row, sets) per ranking
    masks = []
    for i, it in enumerate(items):
        d = engine.feature_count(it, granularity, shared=True)
        rankings = [
            np.asarray(res[i].feature_scores(), dtype=np.float64) for res in results_by_method
        ]
        rng = item_rng(0, engine.item_key(it))
        rankings += [rng.permutation(d).astype(np.float64) for _ in range(config.random_rankings)]
        entries, rows = [], []
        for scores in rankings:
            if scores.size != d:
                raise UserError(f"{scores.size} feature scores for {d} features: cannot check")
            sets = top_k_sets(scores, fractions, rounding="ceil")
            entries.append((sum(len(r) for r in rows), sets))
            rows.append(_masks(d, sets))
        plans.append(entries)
        masks.append(np.concatenate(rows) if rows else np.zeros((0, d), dtype=bool))
    with engine.labelled("check"):  # type: ignore[attr-defined]
        values = engine.score_masks(items, masks, granularity, config.replace)
    seconds = (time.perf_counter() - start) / max(len(items) * len(results_by_method), 1)
    n_methods = len(results_by_method)
    for i, it in enumerate(items):
        full = float(engine.full_values(it).sum())
        v = values[i].sum(axis=1)
        curves = [_curves(full, v, first, sets) for first, sets in plans[i]]
        random = curves[n_methods:]
        for m, res in enumerate(results_by_method):
            res[i].check = _document(full, curves[m], random, fractions, config, seconds)


def _curves(
    full: float, values: np.ndarray, first: int, sets: Sequence[np.ndarray]
) -> dict[str, list[float]]:
    n = len(sets)
    comp = full - values[first : first + n]
    suff = full - values[first + n : first + 2 * n]
    return {
        "k": [int(s.size) for s in sets],
        "comprehensiveness": [float(x) for x in comp],
        "sufficiency": [float(x) for x in suff],
    }


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def _document(
    full: float,
    curve: dict[str, list[float]],
    random: Sequence[dict[str, list[float]]],
    fractions: tuple[float, ...],
    config: CheckConfig,
    seconds: float,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "metric": "eraser_aopc",
        "comprehensiveness": _mean(curve["comprehensiveness"]),
        "sufficiency": _mean(curve["sufficiency"]),
        "target_value": full,
        "fractions": list(fractions),
        "k": curve["k"],
        "comprehensiveness_by_k": curve["comprehensiveness"],
        "sufficiency_by_k": curve["sufficiency"],
        "replace": config.replace,
        "rounding": "ceil",
        "seconds": seconds,
    }
    if random:
        comp = [c for r in random for c in [_mean(r["comprehensiveness"])] if c is not None]
        suff = [s for r in random for s in [_mean(r["sufficiency"])] if s is not None]
        doc["random"] = {
            "comprehensiveness": _mean(comp),
            "sufficiency": _mean(suff),
            "rankings": len(random),
        }
    return doc
