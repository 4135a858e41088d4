"""How far a variant's predictions and explanations moved from the reference's.

Explanation drift, per text (``a``: the reference's scores, ``b``: the variant's, same units):

* ``spearman``: Spearman's ρ of ``a`` and ``b`` (scipy); NaN when either is constant or n < 2;
* ``kendall``: Kendall's τ-b (scipy, ties corrected); NaN in the same cases;
* ``top_k``: feature agreement (Krishna et al. 2022, "The Disagreement Problem in Explainable
  Machine Learning"): ``|top_k(|a|) ∩ top_k(|b|)| / k`` with ``k = min(k, n)``; the top-k sets
  rank by absolute score, ties broken by position;
* ``sign``: sign agreement (same paper): the features in both top-k sets whose scores have the
  same sign, over ``k``;
* ``l1``: ``Σ|a − b| / Σ|a|`` (relative L1 change; NaN when ``a`` is all zero).

Prediction drift: accuracy and agreement with the reference as proportions with Wilson score
intervals, and McNemar's exact test of the reference's and the variant's correctness (two-sided
binomial test on the discordant pairs).

>>> d = attribution_drift([0.5, -0.2, 0.1, 0.0], [0.4, -0.1, 0.2, 0.0], k=2)
>>> round(d["spearman"], 3), d["top_k"], d["sign"]  # same ranks; top-2 sets {0, 1} and {0, 2}
(1.0, 0.5, 0.5)
>>> mcnemar_exact([True, True, False, True], [True, False, False, True])
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DRIFT_METRICS = ("spearman", "kendall", "top_k", "sign", "l1")


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` positions of largest ``|score|`` (ties: the earlier position first)."""
    return np.argsort(-np.abs(scores), kind="stable")[:k]


def attribution_drift(
    reference: Sequence[float] | np.ndarray, variant: Sequence[float] | np.ndarray, *, k: int = 5
) -> dict[str, float]:
    """The drift metrics of one text (see the module docstring)."""
    from scipy.stats import kendalltau, spearmanr

    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(variant, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"score vectors differ in length: {a.size} vs {b.size}")
    nan = float("nan")
    n = a.size
    if n == 0:
        return dict.fromkeys(DRIFT_METRICS, nan)
    ranked = n >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0
    kk = min(k, n)
    ta, tb = top_k_indices(a, kk), top_k_indices(b, kk)
    common = np.intersect1d(ta, tb)
    norm = np.abs(a).sum()
    return {
        "spearman": float(spearmanr(a, b).statistic) if ranked else nan,
        "kendall": float(kendalltau(a, b).statistic) if ranked else nan,
        "top_k": common.size / kk,
        "sign": float(np.sum(np.sign(a[common]) == np.sign(b[common]))) / kk,
        "l1": float(np.abs(a - b).sum() / norm) if norm > 0 else nan,
    }


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927); (NaN, NaN) for n = 0 (the audits'
    :func:`~explainlm.audits.stats.wilson_ci`: one implementation)."""
    from explainlm.audits.stats import wilson_ci

    return wilson_ci(successes, n, level)


def mcnemar_exact(reference_correct: Sequence[bool], variant_correct: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value: a binomial(b + c, ½) test of the discordant counts
    ``b`` (reference right, variant wrong) and ``c`` (the reverse); 1.0 when there are none."""
    from scipy.stats import binomtest

    r = np.asarray(reference_correct, dtype=bool)
    v = np.asarray(variant_correct, dtype=bool)
    b = int(np.sum(r & ~v))
    c = int(np.sum(~r & v))
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5).pvalue)


def proportion(flags: Sequence[bool]) -> dict[str, float]:
    """``{"value", "ci_low", "ci_high", "n"}`` of a list of booleans (Wilson 95 % interval)."""
    n = len(flags)
    k = int(np.sum(np.asarray(flags, dtype=bool)))
    lo, hi = wilson_interval(k, n)
    return {"value": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}


def prediction_drift(
    gold: Sequence[str] | None,
    reference: Sequence[str],
    variant: Sequence[str],
    reference_prob: Sequence[float],
    variant_prob: Sequence[float],
) -> dict[str, object]:
    """Accuracy (with gold labels), agreement with the reference's labels, McNemar's test, and the
    mean absolute change of the probability of the reference's predicted label (bootstrap CI)."""
    from explainlm.evaluation.stats import bootstrap_ci

    agree = [a == b for a, b in zip(reference, variant, strict=True)]
    shift = np.abs(np.asarray(variant_prob) - np.asarray(reference_prob))
    mean, lo, hi = bootstrap_ci(shift.tolist())
    out: dict[str, object] = {
        "agreement": proportion(agree),
        "prob_shift": {"value": mean, "ci_low": lo, "ci_high": hi, "n": int(shift.size)},
    }
    if gold is not None:
        ref_ok = [g == p for g, p in zip(gold, reference, strict=True)]
        var_ok = [g == p for g, p in zip(gold, variant, strict=True)]
        out["accuracy"] = proportion(var_ok)
        out["reference_accuracy"] = proportion(ref_ok)
        out["mcnemar_p"] = mcnemar_exact(ref_ok, var_ok)
        out["discordant"] = {
            "reference_only": int(sum(a and not b for a, b in zip(ref_ok, var_ok, strict=True))),
            "variant_only": int(sum(b and not a for a, b in zip(ref_ok, var_ok, strict=True))),
        }
    return out
