"""Summaries of a comparison: per variant, prediction drift, speed, size, explanation drift with
bootstrap CIs, the change in faithfulness with paired tests, and which methods survive.

Stability ranking: under each variant the methods are ranked by their mean Spearman ρ with the
reference's attributions (ties: higher top-k agreement first); across variants, by their mean rank
(lower is more stable), so one variant with extreme drift cannot dominate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainlm.compression.drift import DRIFT_METRICS, attribution_drift, prediction_drift
from explainlm.evaluation.stats import bootstrap_ci, paired_test

HIGHER_IS_BETTER = {"comprehensiveness": True, "sufficiency": False}


def _ci(values: Sequence[float], seed: int = 0) -> dict[str, float]:
    mean, lo, hi = bootstrap_ci(list(values), seed=seed)
    n = int(np.isfinite(np.asarray(values, dtype=np.float64)).sum()) if len(values) else 0
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "n": n}


def drift_rows(
    ref: Mapping[str, Any], var: Mapping[str, Any], name: str, top_k: int
) -> list[dict[str, Any]]:
    """One row per (method, text) with the drift metrics of :func:`attribution_drift`."""
    rows = []
    for method, var_scores in var["scores"].items():
        ref_scores = ref["scores"].get(method)
        if ref_scores is None:
            continue
        for i, (a, b) in enumerate(zip(ref_scores, var_scores, strict=True)):
            rows.append(
                {
                    "variant": name,
                    "method": method,
                    "example": i,
                    **attribution_drift(a, b, k=top_k),
                }
            )
    return rows


def _faithfulness(ref: Mapping[str, Any], var: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method, per in var["faithfulness"].items():
        for metric, values in per.items():
            base = ref["faithfulness"].get(method, {}).get(metric)
            if base is None:
                continue
            a, b = np.asarray(base, dtype=np.float64), np.asarray(values, dtype=np.float64)
            out.setdefault(method, {})[metric] = {
                "reference": _ci(a.tolist()),
                "variant": _ci(b.tolist()),
                "delta": _ci((b - a).tolist()),
                "p_value": paired_test(b.tolist(), a.tolist()),
                "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
            }
    return out


def _rank(drift: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[str]:
    def key(method: str) -> tuple[float, float]:
        rho = drift[method]["spearman"]["mean"]
        top = drift[method]["top_k"]["mean"]
        return (-rho if math.isfinite(rho) else math.inf, -top if math.isfinite(top) else math.inf)

    return sorted(drift, key=key)


def summarize_variant(
    name: str,
    entry: Mapping[str, Any],
    ref: Mapping[str, Any],
    gold: Sequence[str] | None,
    top_k: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary of one variant and its per-text drift rows."""
    var = entry["payload"]
    ref_label = ref["predicted"]
    ref_prob = [p[lab] for p, lab in zip(ref["probs"], ref_label, strict=True)]
    var_prob = [p[lab] for p, lab in zip(var["probs"], ref_label, strict=True)]
    rows = drift_rows(ref, var, name, top_k)
    drift: dict[str, Any] = {}
    for method in var["scores"]:
        mine = [r for r in rows if r["method"] == method]
        drift[method] = {m: _ci([r[m] for r in mine]) for m in DRIFT_METRICS}
    info = dict(entry.get("info", {}))
    summary = {
        "spec": name,
        "family": info.get("family"),
        "level": info.get("level"),
        "info": info,
        "predictions": prediction_drift(gold, ref_label, var["predicted"], ref_prob, var_prob),
        "speed": entry.get("timing", {}),
        "drift": drift,
        "faithfulness": _faithfulness(ref, var),
        "skipped": var.get("skipped", {}),
        "seconds": var.get("seconds", {}),
        "stability_ranking": _rank(drift),
    }
    return summary, rows


def overall_ranking(variants: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Methods by mean rank over the variants (see the module docstring)."""
    ranks: dict[str, list[int]] = {}
    rhos: dict[str, list[float]] = {}
    for v in variants:
        for r, method in enumerate(v["stability_ranking"], start=1):
            ranks.setdefault(method, []).append(r)
            rhos.setdefault(method, []).append(v["drift"][method]["spearman"]["mean"])
    table = [
        {
            "method": m,
            "mean_rank": float(np.mean(ranks[m])),
            "mean_spearman": float(np.nanmean(rhos[m])) if np.isfinite(rhos[m]).any() else None,
            "variants": len(ranks[m]),
        }
        for m in ranks
    ]
    return sorted(table, key=lambda r: (r["mean_rank"], -(r["mean_spearman"] or -2.0)))


def reference_summary(ref: Mapping[str, Any], gold: Sequence[str] | None) -> dict[str, Any]:
    from explainlm.compression.drift import proportion

    out: dict[str, Any] = {"n": len(ref["predicted"]), "seconds": ref.get("seconds", {})}
    if gold is not None:
        out["accuracy"] = proportion([g == p for g, p in zip(gold, ref["predicted"], strict=True)])
    out["faithfulness"] = {
        method: {metric: _ci(vals) for metric, vals in per.items()}
        for method, per in ref["faithfulness"].items()
    }
    return out


def summarize(
    raw: Mapping[str, Any], gold: Sequence[str] | None, top_k: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``({"reference", "variants", "ranking"}, per-text drift rows)`` of a comparison."""
    ref = raw["reference"]
    variants, rows = [], []
    for name in raw["order"]:
        s, r = summarize_variant(name, raw["variants"][name], ref, gold, top_k)
        variants.append(s)
        rows.extend(r)
    doc = {
        "reference": reference_summary(ref, gold),
        "variants": variants,
        "ranking": overall_ranking([v for v in variants if v["family"] != "reference"]),
    }
    return doc, rows
