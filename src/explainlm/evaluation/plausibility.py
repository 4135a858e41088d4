"""Plausibility metrics: agreement of an explanation with a human rationale (word units).

The predicted rationale is the top-k words by score (k = the mean human rationale length of the
evaluated cases by default, rounded, at least 1). Per-example precision, recall and F1 are averaged
over examples (ERASER's macro averaging).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.evaluation.base import METRICS, Case, Metric
from explainlm.evaluation.faithfulness import ranking


def f1(p: float, r: float) -> float:
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def spans(flags: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1s as ``[start, end)`` spans.

    >>> spans([0, 1, 1, 0, 1])
    [(1, 3), (4, 5)]
    """
    out: list[tuple[int, int]] = []
    start = None
    for i, f in enumerate(list(flags) + [0]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def iou_f1_instance(truth: Sequence[int], pred: Sequence[int], threshold: float = 0.5) -> float:
    """ERASER's IOU F1 for one example: a predicted span matches when its best IOU with a true span
    is ≥ ``threshold``; P = matches / predicted spans, R = matches / true spans."""
    t_spans, p_spans = spans(truth), spans(pred)
    if not t_spans or not p_spans:
        return 0.0 if t_spans or p_spans else float("nan")
    tp = 0
    for ps, pe in p_spans:
        best = 0.0
        for ts, te in t_spans:
            inter = max(0, min(pe, te) - max(ps, ts))
            union = (pe - ps) + (te - ts) - inter
            best = max(best, inter / union if union else 0.0)
        tp += best >= threshold
    return f1(tp / len(p_spans), tp / len(t_spans))


def _k_for(cases: Sequence[Case], k: Any) -> int | None:
    if k == "mean":
        lengths = [int(c.rationale.sum()) for c in cases if c.rationale is not None]
        return max(1, int(round(float(np.mean(lengths))))) if lengths else None
    if k == "per_example":
        return None
    return int(k)


def _pred(c: Case, k: int | None, only_positive: bool) -> np.ndarray:
    kk = int(c.rationale.sum()) if k is None else k  # type: ignore[union-attr]
    idx = ranking(c.scores)[: max(kk, 0)]
    if only_positive:
        idx = idx[c.scores[idx] > 0]
    out = np.zeros(c.n, dtype=int)
    out[idx] = 1
    return out


class _Plausibility(Metric):
    family = "plausibility"
    needs = ("rationale",)
    defaults = {"k": "mean", "only_positive": False}
    citation = "DeYoung et al. (2020), ERASER"

    def validate(self) -> None:
        k = self.params["k"]
        if k not in ("mean", "per_example") and (not str(k).isdigit() or int(k) < 1):
            raise UserError(f"{self.name}: k must be a positive integer, mean or per_example")

    def _ready(self, cases: Sequence[Case]) -> None:
        for c in cases:
            if c.rationale is not None and c.rationale.size != c.n:
                raise UserError(
                    f"{self.name}: rationale has {c.rationale.size} flags for {c.n} units of "
                    f"{c.explanation.text[:40]!r} (plausibility needs word granularity)"
                )

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        self._ready(cases)
        k = _k_for(cases, self.params["k"])
        out = []
        for c in cases:
            if c.rationale is None or c.n == 0 or c.rationale.sum() == 0:
                out.append({"value": float("nan")})
                continue
            pred = _pred(c, k, bool(self.params["only_positive"]))
            out.append({"value": float(self.score(c.rationale, pred)), "k": int(pred.sum())})
        return out

    def score(self, truth: np.ndarray, pred: np.ndarray) -> float:
        raise NotImplementedError


@METRICS.register()
class TokenF1(_Plausibility):
    """Token F1 of the top-k words against the human rationale."""

    name = "token_f1"

    def score(self, truth: np.ndarray, pred: np.ndarray) -> float:
        tp = int((truth.astype(bool) & pred.astype(bool)).sum())
        p = tp / pred.sum() if pred.sum() else 0.0
        r = tp / truth.sum()
        return f1(p, r)


@METRICS.register()
class IouF1(_Plausibility):
    """IOU F1: span-level F1 where spans match at IOU ≥ 0.5."""

    name = "iou_f1"
    defaults = {"k": "mean", "only_positive": False, "threshold": 0.5}

    def score(self, truth: np.ndarray, pred: np.ndarray) -> float:
        return iou_f1_instance(truth, pred, float(self.params["threshold"]))


@METRICS.register()
class AUPRC(_Plausibility):
    """Area under the precision-recall curve of the soft scores against the human rationale."""

    name = "auprc"
    defaults = {"only_positive": False}
    citation = "DeYoung et al. (2020), ERASER; Attanasio et al. (2023), ferret"

    def validate(self) -> None:
        pass

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        from sklearn.metrics import auc, precision_recall_curve

        self._ready(cases)
        out = []
        for c in cases:
            r = c.rationale
            if r is None or c.n == 0 or r.sum() in (0, c.n):
                out.append({"value": float("nan")})
                continue
            s = np.maximum(c.scores, 0) if self.params["only_positive"] else c.scores
            precision, recall, _ = precision_recall_curve(r, s)
            out.append({"value": float(auc(recall, precision))})
        return out
