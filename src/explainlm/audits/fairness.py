"""Group fairness audit of a classifier's predictions on a labelled table with group columns.

Every group column is a *dimension*; with two or more columns their **intersection** (``gender ×
race``: one group per observed combination) is one more. For each favourable label (one-vs-rest
for multi-class models) and dimension, :func:`~explainlm.audits.group.group_report` gives per-group
metrics with CIs (Wilson score intervals for the rates — selection rate, TPR, FPR, accuracy —,
stratified bootstrap for the others) and gaps with bootstrap CIs and permutation p-values; all
p-values of the audit form one family and are adjusted together (Holm by default, or
Benjamini–Hochberg).

>>> import numpy as np
>>> res = fairness_audit({"g": ["a"] * 40 + ["b"] * 40}, ["yes"] * 30 + ["no"] * 10 + ["yes"] * 15
...                      + ["no"] * 25, positive_labels=["yes"], n_boot=200, n_perm=200)
>>> di = [c for c in res["dimensions"][0]["comparisons"] if c["metric"] == "disparate_impact"][0]
>>> round(di["value"], 2), di["four_fifths_violated"]
(0.5, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainlm.audits.group import group_report
from explainlm.audits.stats import CORRECTION_NAMES, adjust_pvalues, fmt_ci, fmt_p
from explainlm.errors import UserError

INTERSECTION_SEP = " × "


def dimensions(
    groups: Mapping[str, Sequence[Any]], intersections: bool = True
) -> list[tuple[str, list[str]]]:
    """``(name, group value per row)`` for every column, plus the intersection of all columns."""
    cols = list(groups)
    out = [(c, [str(v) for v in groups[c]]) for c in cols]
    if intersections and len(cols) > 1:
        n = len(groups[cols[0]])
        values = [" & ".join(str(groups[c][i]) for c in cols) for i in range(n)]
        out.append((INTERSECTION_SEP.join(cols), values))
    return out


def fairness_audit(
    groups: Mapping[str, Sequence[Any]],
    predicted: Sequence[str],
    gold: Sequence[str] | None = None,
    probs: Sequence[Mapping[str, float]] | None = None,
    *,
    positive_labels: Sequence[str],
    intersections: bool = True,
    min_group_size: int = 20,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = 0.95,
    correction: str = "holm",
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit document: one entry per (favourable label, dimension), adjusted p-values, conclusions."""
    if not positive_labels:
        raise UserError("give at least one favourable (positive) label to audit")
    out: list[dict[str, Any]] = []
    for label in positive_labels:
        y_pred = np.array([p == label for p in predicted], dtype=int)
        y_true = None if gold is None else np.array([g == label for g in gold], dtype=int)
        score = None if probs is None else np.array([float(p.get(label, np.nan)) for p in probs])
        if score is not None and not np.all(np.isfinite(score)):
            score = None
        for name, values in dimensions(groups, intersections):
            rep = group_report(
                values,
                y_pred,
                y_true,
                score,
                min_group_size=min_group_size,
                n_boot=n_boot,
                n_perm=n_perm,
                level=level,
                seed=seed,
            )
            out.append({"label": label, "dimension": name, **rep})
    comps = [c for d in out for c in d["comparisons"]]
    adjusted = adjust_pvalues([c["p_value"] for c in comps], correction)
    for c, p in zip(comps, adjusted, strict=True):
        c["p_adjusted"] = p
        c["significant"] = bool(p is not None and np.isfinite(p) and p < alpha)
    doc = {
        "kind": "fairness",
        "positive_labels": list(positive_labels),
        "n": len(predicted),
        "group_columns": list(groups),
        "dimensions": out,
        "correction": correction,
        "correction_name": CORRECTION_NAMES[correction],
        "tests": len([c for c in comps if c["p_value"] is not None]),
        "level": level,
        "n_boot": n_boot,
        "n_perm": n_perm,
        "min_group_size": min_group_size,
        "seed": seed,
    }
    doc["conclusions"] = conclusions(doc, alpha)
    doc["notes"] = []
    floor = doc["tests"] / (n_perm + 1) if n_perm else float("inf")
    if doc["tests"] and correction != "none" and floor >= alpha:
        doc["notes"].append(
            f"too few permutations for {doc['tests']} tests: with n_perm = {n_perm} the smallest "
            f"adjusted p-value is about {min(floor, 1):.3f}, so nothing can reach {alpha}; "
            f"use n_perm ≥ {int(doc['tests'] / alpha * 2)}"
        )
    return doc


def _metric_of(dim: Mapping[str, Any], group: str, metric: str) -> float:
    for g in dim["groups"]:
        if g["group"] == group:
            return float(g["metrics"][metric]["value"])
    return float("nan")


def conclusions(doc: Mapping[str, Any], alpha: float = 0.05) -> list[str]:
    """Plain-language findings with effect sizes, intervals and adjusted p-values."""
    lines: list[str] = []
    adj = "" if doc["correction"] == "none" else f", {doc['correction']}-adjusted"
    for dim in doc["dimensions"]:
        where = f"{dim['dimension']} (favourable label {dim['label']!r})"
        for c in dim["comparisons"]:
            p = fmt_p(c.get("p_adjusted")) + adj
            sig = c.get("significant")
            hi, lo = c["highest"], c["lowest"]
            if c["metric"] == "disparate_impact":
                rates = (
                    f"selection rate {_metric_of(dim, lo, 'selection_rate'):.2f} for {lo} vs "
                    f"{_metric_of(dim, hi, 'selection_rate'):.2f} for {hi}"
                )
                verdict = (
                    "below the four-fifths threshold"
                    if c["four_fifths_violated"]
                    else "meets the four-fifths rule"
                )
                lines.append(
                    f"{where}: disparate impact {fmt_ci(c['value'], c['ci'])} ({rates}): "
                    f"{verdict}, {p}."
                )
            elif c["metric"] == "equal_opportunity_difference":
                tpr = (
                    f"true-positive rate {_metric_of(dim, lo, 'true_positive_rate'):.2f} for "
                    f"{lo} vs {_metric_of(dim, hi, 'true_positive_rate'):.2f} for {hi}"
                )
                verdict = "a significant gap" if sig else "no significant gap"
                if c["value"] == 0:
                    tpr = f"equal true-positive rates, {_metric_of(dim, hi, 'true_positive_rate'):.2f}"
                lines.append(
                    f"{where}: equal-opportunity difference {fmt_ci(c['value'], c['ci'])} "
                    f"({tpr}): {verdict}, {p}."
                )
            elif sig and c["metric"] != "demographic_parity_difference":
                lines.append(
                    f"{where}: {c['metric'].replace('_', ' ')} {fmt_ci(c['value'], c['ci'])} "
                    f"between {lo} and {hi}, {p}."
                )
        for g in dim["groups"]:
            small = [f"{m} (n = {c['n']})" for m, c in g["metrics"].items() if c.get("note")]
            if small:
                lines.append(
                    f"{where}: group {g['group']!r} has too few cases for intervals on "
                    f"{', '.join(small)}; it is left out of those comparisons."
                )
    return lines
