"""Faithfulness metrics: does removing what the explanation calls important change the prediction?

All model queries go through :func:`explainlm.methods.perturbation.evaluate_masks` (the same
batched engine path the perturbation methods use), with the removal operator ``replace``:
``remove`` (delete the words and re-tokenize), ``mask`` or ``pad`` (replace their tokens).
f is the probability of the explained label; f(x) is that of the full input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.engine import Engine
from explainlm.engine.ranking import ranking, top_k_count, top_k_sets
from explainlm.errors import UserError
from explainlm.evaluation.base import METRICS, Case, Metric
from explainlm.methods.perturbation import REPLACE, evaluate_masks

ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
FERRET_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 11))
ROUNDING = ("floor", "ceil")
__all__ = ["ERASER_BINS", "FERRET_THRESHOLDS", "ranking", "top_k_count", "top_k_sets"]


def _check_replace(name: str, params: dict[str, Any]) -> None:
    if params["replace"] not in REPLACE:
        raise UserError(f"{name}: replace must be one of {', '.join(REPLACE)}")


def _evaluate(
    engine: Engine | None, cases: Sequence[Case], masks: Sequence[np.ndarray], replace: str
) -> list[np.ndarray]:
    """Target values of each case's item under its keep-masks (all cases in shared batches)."""
    if engine is None:
        raise UserError("this metric needs the model: pass classifier=")
    todo = [i for i, m in enumerate(masks) if len(m)]
    out = [np.zeros(0) for _ in cases]
    if not todo:
        return out
    groups: dict[str, list[int]] = {}
    for i in todo:
        groups.setdefault(cases[i].granularity, []).append(i)
    for gran, idx in groups.items():
        values = evaluate_masks(
            engine,
            [cases[i].item for i in idx],  # type: ignore[misc]
            [masks[i] for i in idx],
            gran,
            replace,
        )
        for i, v in zip(idx, values, strict=True):
            out[i] = v
    return out


class _AOPC(Metric):
    family = "faithfulness"
    needs = ("model",)
    defaults = {
        "bins": ERASER_BINS,
        "replace": "remove",
        "rounding": "floor",
        "only_positive": False,
    }
    keep_top = False

    def validate(self) -> None:
        _check_replace(self.name, self.params)
        if self.params["bins"] == "ferret":
            self.params["bins"] = FERRET_THRESHOLDS
        elif self.params["bins"] == "eraser":
            self.params["bins"] = ERASER_BINS
        bins = [float(b) for b in self.params["bins"]]
        if not bins or any(not 0 < b <= 1 for b in bins):
            raise UserError(f"{self.name}: bins must be fractions in (0, 1]")
        self.params["bins"] = tuple(bins)
        if self.params["rounding"] not in ROUNDING:
            raise UserError(f"{self.name}: rounding must be floor or ceil")

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        sets, masks = [], []
        for c in cases:
            ss = top_k_sets(
                c.scores,
                self.params["bins"],
                rounding=self.params["rounding"],
                only_positive=bool(self.params["only_positive"]),
            )
            m = (
                np.zeros((len(ss), c.n), dtype=bool)
                if self.keep_top
                else np.ones((len(ss), c.n), dtype=bool)
            )
            for row, idx in zip(m, ss, strict=True):
                row[idx] = self.keep_top
            sets.append(ss)
            masks.append(m)
        values = _evaluate(engine, cases, masks, self.params["replace"])
        out = []
        for c, ss, v in zip(cases, sets, values, strict=True):
            if not ss:
                out.append({"value": float("nan"), "note": "no bin selects a feature"})
                continue
            drops = c.item.target_value - v  # type: ignore[union-attr]
            out.append({"value": float(drops.mean()), "k": [int(s.size) for s in ss]})
        return out


@METRICS.register()
class Comprehensiveness(_AOPC):
    """AOPC comprehensiveness: mean over bins of f(x) − f(x without the top-k% features)."""

    name = "comprehensiveness"
    higher_is_better = True
    citation = "DeYoung et al. (2020), ERASER; Attanasio et al. (2023), ferret"


@METRICS.register()
class Sufficiency(_AOPC):
    """AOPC sufficiency: mean over bins of f(x) − f(x with only the top-k% features)."""

    name = "sufficiency"
    higher_is_better = False
    keep_top = True
    citation = "DeYoung et al. (2020), ERASER; Attanasio et al. (2023), ferret"


def curve_points(n: int, max_points: int) -> np.ndarray:
    """Numbers of features removed/inserted at each curve point: 0..n (at most ``max_points`` + 1)."""
    if n <= max_points:
        return np.arange(n + 1)
    return np.unique(np.round(np.linspace(0, n, max_points + 1)).astype(int))


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())


class _Curve(Metric):
    family = "faithfulness"
    needs = ("model",)
    defaults = {"replace": "remove", "max_points": 20, "order": "morf"}
    insertion = False

    def validate(self) -> None:
        _check_replace(self.name, self.params)
        if self.params["order"] not in ("morf", "lerf"):
            raise UserError(f"{self.name}: order must be morf (most relevant first) or lerf")
        if int(self.params["max_points"]) < 1:
            raise UserError(f"{self.name}: max_points must be ≥ 1")

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        plans, masks = [], []
        for c in cases:
            order = ranking(c.scores)
            if self.params["order"] == "lerf":
                order = order[::-1]
            ks = curve_points(c.n, int(self.params["max_points"])) if c.n else np.zeros(0, int)
            m = np.zeros((len(ks), c.n), dtype=bool)
            for row, k in zip(m, ks, strict=True):
                row[order[:k]] = True  # the first k in the order
            if not self.insertion:
                m = ~m
            plans.append(ks)
            masks.append(m)
        values = _evaluate(engine, cases, masks, self.params["replace"])
        out = []
        for c, ks, v in zip(cases, plans, values, strict=True):
            if c.n == 0:
                out.append({"value": float("nan")})
                continue
            x = ks / c.n
            out.append({"value": trapezoid(v, x), "curve": [x.tolist(), v.tolist()]})
        return out


@METRICS.register()
class DeletionAUC(_Curve):
    """Area under f as features are deleted, most relevant first (lower is better).

    ``order="lerf"`` deletes the least relevant first (higher is better then); that curve is the
    most-relevant-first insertion curve read backwards, so its AUC equals ``insertion_auc``.
    """

    name = "deletion_auc"
    higher_is_better = False
    citation = "Samek et al. (2017); Petsiuk, Das & Saenko (2018), RISE"


@METRICS.register()
class InsertionAUC(_Curve):
    """Area under f as features are inserted into an empty input, most relevant first."""

    name = "insertion_auc"
    higher_is_better = True
    insertion = True
    citation = "Petsiuk, Das & Saenko (2018), RISE"


@METRICS.register()
class TauLOO(Metric):
    """Kendall τ-b between the scores and the leave-one-out effects f(x) − f(x without feature j)."""

    name = "tau_loo"
    family = "faithfulness"
    higher_is_better = True
    needs = ("model",)
    defaults = {"replace": "remove"}
    citation = "Attanasio et al. (2023), ferret (taucorr_loo)"

    def validate(self) -> None:
        _check_replace(self.name, self.params)

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        from scipy.stats import kendalltau

        # leave-one-out effects depend on the text and label, not on the method: every method's
        # explanation of the same text shares one set of forwards
        first: dict[tuple[Any, ...], int] = {}
        owner = [
            first.setdefault((c.explanation.text, c.explanation.label, c.granularity, c.n), i)
            for i, c in enumerate(cases)
        ]
        unique = sorted(set(owner))
        masks = [~np.eye(cases[i].n, dtype=bool) for i in unique]
        computed = _evaluate(engine, [cases[i] for i in unique], masks, self.params["replace"])
        by_owner = dict(zip(unique, computed, strict=True))
        values = [by_owner[o] for o in owner]
        out = []
        for c, v in zip(cases, values, strict=True):
            if c.n < 2:
                out.append({"value": float("nan")})
                continue
            loo = c.item.target_value - v  # type: ignore[union-attr]
            tau = kendalltau(c.scores, loo).statistic
            out.append({"value": float(tau) if np.isfinite(tau) else float("nan")})
        return out


@METRICS.register()
class IGDelta(Metric):
    """|Σ attributions − (f(x) − f(x′))|: the completeness gap of integrated gradients."""

    name = "ig_delta"
    family = "faithfulness"
    higher_is_better = False
    citation = "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks"

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        return [
            {"value": float("nan") if c.explanation.delta is None else abs(c.explanation.delta)}
            for c in cases
        ]
