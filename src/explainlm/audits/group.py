"""Group fairness of a classifier's decisions: per-group metrics, gaps, CIs and permutation tests.

For one binary decision (``y_pred`` = the favourable label was predicted) and optional gold labels
and scores, every group gets selection rate, TPR, FPR, accuracy, F1, ROC-AUC and calibration, each
with a CI: the rates that are proportions of k in n trials (selection rate, TPR, FPR, accuracy) a
**Wilson score interval** (Wilson 1927; never degenerate at 0/n or n/n, where a bootstrap
interval collapses to [0, 0]), the others a **stratified bootstrap** CI (every group resampled
with replacement within itself, so group sizes stay fixed); each cell names its ``ci_method``.
Between groups: demographic-parity difference (max − min selection rate) and
ratio (min / max, the **disparate impact**; four-fifths rule: below 0.8 flags adverse impact;
Feldman et al. 2015), equal-opportunity difference (TPR range; Hardt et al. 2016),
equalized-odds difference (max of the TPR and FPR ranges), and the accuracy / F1 / AUC /
calibration ranges. Each gap has a percentile-bootstrap CI and a **permutation-test** p-value for
"no difference": group labels are shuffled (within gold-label strata for TPR / FPR / equalized
odds, whose null is independence given the label), keeping group sizes, and p = (1 + #{T* ≥ T}) /
(1 + n_perm). Point values equal Fairlearn's ``MetricFrame`` (the test oracle).

Groups whose metric has fewer than ``min_group_size`` members in its denominator (e.g. positives for
TPR) get a point value, no interval (``ci`` is ``None`` with a note), and are left out of the gaps.

>>> import numpy as np
>>> g = np.array(["a"] * 50 + ["b"] * 50)
>>> yp = np.r_[np.ones(30), np.zeros(20), np.ones(15), np.zeros(35)].astype(int)
>>> r = group_report(g, yp, n_boot=200, n_perm=200)
>>> r["comparisons"][0]["metric"], round(r["comparisons"][0]["value"], 2)
('demographic_parity_difference', 0.3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainlm.audits.stats import percentile_ci, wilson_ci
from explainlm.errors import UserError

FOUR_FIFTHS = 0.8


@dataclass(frozen=True)
class GroupMetric:
    """A per-group metric: ``fn(idx)`` on index arrays ``[R, n]`` gives ``[R]`` values."""

    name: str
    needs: tuple[str, ...]  # "true", "score"
    stratified: bool  # permutation within gold-label strata
    denominator: str  # rows | positives | negatives: what "group size" means for this metric
    proportion: bool = False  # successes out of `denominator` trials (of 0/1 decisions): Wilson CI


METRICS: dict[str, GroupMetric] = {
    m.name: m
    for m in (
        GroupMetric("selection_rate", (), False, "rows", proportion=True),
        GroupMetric("true_positive_rate", ("true",), True, "positives", proportion=True),
        GroupMetric("false_positive_rate", ("true",), True, "negatives", proportion=True),
        GroupMetric("accuracy", ("true",), False, "rows", proportion=True),
        GroupMetric("f1", ("true",), False, "rows"),
        GroupMetric("roc_auc", ("true", "score"), False, "both"),
        GroupMetric("calibration_gap", ("true", "score"), False, "rows"),
        GroupMetric("ece", ("true", "score"), False, "rows"),
    )
}

# (comparison name, per-group metric, kind)
COMPARISONS: list[tuple[str, str]] = [
    ("demographic_parity_difference", "selection_rate"),
    ("disparate_impact", "selection_rate"),
    ("equal_opportunity_difference", "true_positive_rate"),
    ("equalized_odds_difference", "true_positive_rate+false_positive_rate"),
    ("accuracy_difference", "accuracy"),
    ("f1_difference", "f1"),
    ("roc_auc_difference", "roc_auc"),
    ("calibration_gap_difference", "calibration_gap"),
]


class _Data:
    """The audited arrays and the per-metric vectorised computations on index arrays."""

    def __init__(self, y_pred: np.ndarray, y_true: np.ndarray | None, y_score: np.ndarray | None):
        self.yp = y_pred.astype(np.float64)
        self.yt = None if y_true is None else y_true.astype(np.float64)
        self.s = None if y_score is None else y_score.astype(np.float64)
        self.binary = bool(np.isin(self.yp, (0.0, 1.0)).all())  # decisions, not scores

    def has(self, metric: GroupMetric) -> bool:
        return ("true" not in metric.needs or self.yt is not None) and (
            "score" not in metric.needs or self.s is not None
        )

    def compute(self, name: str, idx: np.ndarray) -> np.ndarray:
        yp = self.yp[idx]
        if name == "selection_rate":
            return yp.mean(axis=1)
        yt = self.yt[idx]  # type: ignore[index]
        with np.errstate(invalid="ignore", divide="ignore"):
            if name == "true_positive_rate":
                return (yp * yt).sum(1) / yt.sum(1)
            if name == "false_positive_rate":
                return (yp * (1 - yt)).sum(1) / (1 - yt).sum(1)
            if name == "accuracy":
                return (yp == yt).mean(axis=1)
            if name == "f1":
                tp = (yp * yt).sum(1)
                denom = 2 * tp + (yp * (1 - yt)).sum(1) + ((1 - yp) * yt).sum(1)
                return np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
            s = self.s[idx]  # type: ignore[index]
            if name == "calibration_gap":
                return (s - yt).mean(axis=1)
            if name == "ece":
                return _ece(s, yt)
            if name == "roc_auc":
                return _auc(s, yt)
        raise KeyError(name)

    def successes(self, name: str, rows: np.ndarray) -> int:
        """k of a proportion metric in the group ``rows`` (its n is :meth:`sizes`)."""
        yp = self.yp[rows]
        if name == "selection_rate":
            return int(yp.sum())
        yt = self.yt[rows]  # type: ignore[index]
        hits = {
            "true_positive_rate": yp * yt,
            "false_positive_rate": yp * (1 - yt),
            "accuracy": yp == yt,
        }[name]
        return int(np.sum(hits))

    def interval(
        self, metric: GroupMetric, rows: np.ndarray, reps: np.ndarray, level: float
    ) -> tuple[list[float], str]:
        """The group's CI and how it was computed: Wilson for a proportion of 0/1 decisions,
        else the percentile interval of the stratified-bootstrap replicates ``reps``."""
        if metric.proportion and self.binary:
            k, n = self.successes(metric.name, rows), self.sizes(metric, rows)
            return list(wilson_ci(k, n, level)), "wilson"
        return list(percentile_ci(reps, level)), "bootstrap"

    def sizes(self, metric: GroupMetric, rows: np.ndarray) -> int:
        if metric.denominator == "rows":
            return int(rows.size)
        pos = int(self.yt[rows].sum()) if self.yt is not None else 0
        if metric.denominator == "positives":
            return pos
        if metric.denominator == "negatives":
            return int(rows.size) - pos
        return min(pos, int(rows.size) - pos)


def _auc(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of ``[R, n]`` scores and 0/1 labels (ties count one half)."""
    from scipy.stats import rankdata

    ranks = rankdata(s, axis=1)
    n1 = y.sum(1)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _ece(s: np.ndarray, y: np.ndarray, bins: int = 10) -> np.ndarray:
    """Expected calibration error (equal-width bins of the score) per row of ``[R, n]``."""
    b = np.clip((s * bins).astype(int), 0, bins - 1)
    out = np.zeros(s.shape[0])
    for k in range(bins):
        inside = b == k
        out += np.abs(((s - y) * inside).sum(1))
    return out / s.shape[1]


def _chunks(total: int, width: int) -> list[tuple[int, int]]:
    step = max(1, 2_000_000 // max(width, 1))
    return [(a, min(a + step, total)) for a in range(0, total, step)]


def _codes(groups: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    arr = np.asarray([str(g) for g in groups])
    names, codes = np.unique(arr, return_inverse=True)
    return [str(n) for n in names], codes


def check_groups(groups: Sequence[Any], column: str, min_group_size: int) -> None:
    """A one-line :class:`UserError` for a constant group column or no two large-enough groups."""
    names, codes = _codes(groups)
    if len(names) < 2:
        raise UserError(
            f"group column {column!r} is constant ({names[0] if names else 'empty'}): "
            "fairness needs at least two groups"
        )
    counts = np.bincount(codes)
    big = [n for n, c in zip(names, counts, strict=True) if c >= min_group_size]
    if len(big) < 2:
        shown = ", ".join(f"{n} ({c})" for n, c in zip(names, counts, strict=True))
        raise UserError(
            f"group column {column!r}: fewer than two groups have at least {min_group_size} "
            f"members ({shown}); a confidence interval needs more data (or lower "
            "--min-group-size, knowing the intervals get wide)"
        )


def group_report(
    groups: Sequence[Any],
    y_pred: Sequence[int] | np.ndarray,
    y_true: Sequence[int] | np.ndarray | None = None,
    y_score: Sequence[float] | np.ndarray | None = None,
    *,
    metrics: Sequence[str] | None = None,
    min_group_size: int = 20,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-group metrics with CIs (Wilson for rates, else stratified bootstrap) and between-group
    gaps with stratified-bootstrap CIs and permutation tests.

    ``y_pred``: 1 where the favourable label was predicted; ``y_true``: 1 where it is the gold
    label; ``y_score``: the model's probability of it. Returns ``{"groups": [...],
    "comparisons": [...]}`` (p-values unadjusted; see :func:`~explainlm.audits.stats.adjust_pvalues`).
    """
    names, codes = _codes(groups)
    data = _Data(
        np.asarray(y_pred),
        None if y_true is None else np.asarray(y_true),
        None if y_score is None else np.asarray(y_score),
    )
    wanted = [m for m in (metrics or METRICS) if data.has(METRICS[m])]
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(codes == k) for k in range(len(names))]
    boot = {k: _bootstrap_indices(rows[k], n_boot, rng) for k in range(len(names))}
    per_group: list[dict[str, Any]] = []
    reps: dict[str, dict[int, np.ndarray]] = {m: {} for m in wanted}
    eligible: dict[str, list[int]] = {m: [] for m in wanted}
    for k, name in enumerate(names):
        entry: dict[str, Any] = {"group": name, "n": int(rows[k].size), "metrics": {}}
        if data.yt is not None:
            entry["n_positive"] = int(data.yt[rows[k]].sum())
        for m in wanted:
            spec = METRICS[m]
            value = float(data.compute(m, rows[k][None, :])[0])
            size = data.sizes(spec, rows[k])
            cell: dict[str, Any] = {"value": value, "n": size, "ci": None}
            if size >= min_group_size:
                r = _on_chunks(lambda idx, m=m: data.compute(m, idx), boot[k])
                reps[m][k] = r  # the gaps' bootstrap uses them whatever the group's interval
                cell["ci"], cell["ci_method"] = data.interval(spec, rows[k], r, level)
                eligible[m].append(k)
            else:
                cell["note"] = f"too few ({size} < {min_group_size}) for a confidence interval"
            entry["metrics"][m] = cell
        per_group.append(entry)
    comparisons = []
    for comp, metric in COMPARISONS:
        parts = metric.split("+")
        if not all(p in wanted for p in parts):
            continue
        keep = sorted(set.intersection(*(set(eligible[p]) for p in parts)))
        if len(keep) < 2:
            continue
        comparisons.append(
            _comparison(comp, parts, keep, names, codes, data, per_group, reps, n_perm, level, rng)
        )
    return {"groups": per_group, "comparisons": comparisons, "metrics": wanted}


def _bootstrap_indices(rows: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_boot, n]`` resampled row ids of one group (stratified bootstrap: within the group)."""
    return rows[rng.integers(0, rows.size, size=(n_boot, rows.size))]


def _on_chunks(fn: Callable[[np.ndarray], np.ndarray], idx: np.ndarray) -> np.ndarray:
    out = np.empty(idx.shape[0])
    for a, b in _chunks(idx.shape[0], idx.shape[1]):
        out[a:b] = fn(idx[a:b])
    return out


def _gap(values: dict[int, np.ndarray] | dict[int, float], keep: Sequence[int], ratio: bool) -> Any:
    stack = np.stack([np.asarray(values[k], dtype=np.float64) for k in keep])
    hi, lo = np.nanmax(stack, axis=0), np.nanmin(stack, axis=0)
    if ratio:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(hi > 0, lo / np.where(hi > 0, hi, 1), np.nan)
    return hi - lo


def _comparison(
    comp: str,
    parts: list[str],
    keep: list[int],
    names: list[str],
    codes: np.ndarray,
    data: _Data,
    per_group: list[dict[str, Any]],
    reps: dict[str, dict[int, np.ndarray]],
    n_perm: int,
    level: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    ratio = comp == "disparate_impact"  # min/max ratio of one metric; the rest are ranges
    points = {p: {k: per_group[k]["metrics"][p]["value"] for k in keep} for p in parts}
    value = max(float(_gap(points[p], keep, ratio)) for p in parts)
    boot = np.max(np.stack([_gap(reps[p], keep, ratio) for p in parts]), axis=0)
    lo, hi = percentile_ci(boot, level)
    p_value = _permutation_p(parts, keep, codes, data, n_perm, rng) if n_perm > 0 else None
    best = max(keep, key=lambda k: points[parts[0]][k])
    worst = min(keep, key=lambda k: points[parts[0]][k])
    out: dict[str, Any] = {
        "metric": comp,
        "of": "+".join(parts),
        "value": value,
        "ci": [lo, hi],
        "p_value": p_value,
        "groups": [names[k] for k in keep],
        "highest": names[best],
        "lowest": names[worst],
    }
    if ratio:
        out["four_fifths_violated"] = bool(value < FOUR_FIFTHS)
        out["p_value_note"] = "permutation test of equal selection rates (as the difference)"
    return out


def _permutation_p(
    parts: list[str],
    keep: list[int],
    codes: np.ndarray,
    data: _Data,
    n_perm: int,
    rng: np.random.Generator,
) -> float:
    """Permutation p-value of the range statistic of ``parts`` among the groups ``keep``."""
    rows = np.flatnonzero(np.isin(codes, keep))
    sub = codes[rows]
    stratified = any(METRICS[p].stratified for p in parts)
    strata = (
        [rows[data.yt[rows] == v] for v in (0.0, 1.0)]  # type: ignore[index]
        if stratified and data.yt is not None
        else [rows]
    )

    def stat(assign: np.ndarray) -> np.ndarray:  # assign: [R, len(rows)] row ids per position
        vals = []
        for p in parts:
            per = {k: data.compute(p, assign[:, sub == k]) for k in keep}
            vals.append(_gap(per, keep, False))
        return np.max(np.stack(vals), axis=0)

    observed = float(stat(rows[None, :])[0])
    hits = 0
    columns = [np.searchsorted(rows, stratum) for stratum in strata]  # rows is sorted
    for a, b in _chunks(n_perm, rows.size):
        assign = np.empty((b - a, rows.size), dtype=np.int64)
        for stratum, cols in zip(strata, columns, strict=True):
            assign[:, cols] = rng.permuted(np.tile(stratum, (b - a, 1)), axis=1)
        t = stat(assign)
        hits += int(np.sum(t >= observed - 1e-12))
    return (hits + 1) / (n_perm + 1)


def mean_gap_report(
    groups: Sequence[Any], values: Sequence[float] | np.ndarray, **kw: Any
) -> dict[str, Any]:
    """Per-group means of a score (stratified-bootstrap CIs; Wilson when every value is 0 or 1,
    a proportion) and their range with a permutation p-value: ``{"by_group": [...],
    "comparison": {...} | None}``."""
    rep = group_report(
        groups, np.asarray(values, dtype=np.float64), metrics=["selection_rate"], **kw
    )
    by_group = []
    for g in rep["groups"]:
        cell = g["metrics"]["selection_rate"]
        by_group.append({"group": g["group"], "n": g["n"], "value": cell["value"],
                         "ci": cell["ci"], "note": cell.get("note")})  # fmt: skip
    comp = next(
        (c for c in rep["comparisons"] if c["metric"] == "demographic_parity_difference"), None
    )
    if comp is not None:
        comp = {**comp, "metric": "mean_difference"}
    return {"by_group": by_group, "comparison": comp}
