"""Drift and prediction statistics against scipy and brute force on fixtures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from explainlm.compression.drift import (
    attribution_drift,
    mcnemar_exact,
    prediction_drift,
    wilson_interval,
)

FIXTURES = [
    ([0.5, -0.2, 0.1, 0.0, 0.3], [0.4, -0.1, 0.2, 0.0, -0.3]),
    ([1.0, 1.0, 2.0, 3.0], [3.0, 2.0, 2.0, 1.0]),  # ties in both
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]),
    ([-2.0, 0.5], [0.5, -2.0]),
]


@pytest.mark.parametrize(("a", "b"), FIXTURES)
def test_rank_correlations_equal_scipy(a, b):
    d = attribution_drift(a, b, k=3)
    assert d["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert d["kendall"] == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)


def _brute_top_k(scores, k):
    # every position whose |score| beats all but fewer than k others, earlier positions first
    order = sorted(range(len(scores)), key=lambda i: (-abs(scores[i]), i))
    return set(order[: min(k, len(scores))])


@pytest.mark.parametrize(("a", "b"), FIXTURES)
@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_top_k_and_sign_agreement_brute_force(a, b, k):
    d = attribution_drift(a, b, k=k)
    ta, tb = _brute_top_k(a, k), _brute_top_k(b, k)
    kk = min(k, len(a))
    assert d["top_k"] == pytest.approx(len(ta & tb) / kk)
    sgn = lambda x: (x > 0) - (x < 0)  # noqa: E731
    same = [i for i in ta & tb if sgn(a[i]) == sgn(b[i])]
    assert d["sign"] == pytest.approx(len(same) / kk)
    assert d["l1"] == pytest.approx(
        sum(abs(x - y) for x, y in zip(a, b, strict=True)) / sum(abs(x) for x in a)
    )


def test_constant_scores_have_no_rank_correlation():
    d = attribution_drift([0.0, 0.0, 0.0], [0.1, 0.2, 0.3])
    assert math.isnan(d["spearman"]) and math.isnan(d["kendall"]) and math.isnan(d["l1"])


def test_identical_scores_agree_fully():
    a = np.random.default_rng(0).standard_normal(9)
    d = attribution_drift(a, a.copy(), k=4)
    assert d["spearman"] == d["kendall"] == d["top_k"] == d["sign"] == 1.0 and d["l1"] == 0.0


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (45, 50), (1, 1)])
def test_wilson_interval_closed_form(k, n):
    lo, hi = wilson_interval(k, n)
    # independently: the interval is where |p_hat - p| <= z sqrt(p (1 - p) / n)
    z = stats.norm.ppf(0.975)
    p_hat = k / n
    roots = np.roots([1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat])
    want = sorted(np.clip(roots.real, 0, 1))
    assert (lo, hi) == pytest.approx(tuple(want), abs=1e-9)


def test_mcnemar_exact_equals_binomial_brute_force():
    ref = [True] * 10 + [False] * 5 + [True] * 3 + [False] * 2
    var = [True] * 10 + [False] * 5 + [False] * 3 + [True] * 2  # b = 3, c = 2
    b, c = 3, 2
    n = b + c
    probs = [math.comb(n, i) / 2**n for i in range(n + 1)]
    want = min(1.0, sum(p for p in probs if p <= probs[min(b, c)] + 1e-12))
    assert mcnemar_exact(ref, var) == pytest.approx(want)
    assert mcnemar_exact(ref, ref) == 1.0


def test_prediction_drift_counts():
    gold = ["pos", "neg", "pos", "neg"]
    ref = ["pos", "neg", "neg", "neg"]
    var = ["pos", "pos", "pos", "neg"]
    d = prediction_drift(gold, ref, var, [0.9, 0.8, 0.6, 0.7], [0.8, 0.4, 0.3, 0.7])
    assert d["agreement"]["value"] == 0.5
    assert d["accuracy"]["value"] == 0.75 and d["reference_accuracy"]["value"] == 0.75
    assert d["discordant"] == {"reference_only": 1, "variant_only": 1}
    assert d["prob_shift"]["value"] == pytest.approx(np.mean([0.1, 0.4, 0.3, 0.0]))


def test_top_k_brute_force_matches_exhaustive_definition():
    # the brute-force helper itself against the definition: no excluded score beats an included one
    a = [0.3, -0.3, 0.1, 0.5]
    for k in range(1, 5):
        top = _brute_top_k(a, k)
        for i, j in itertools.product(top, set(range(4)) - top):
            assert abs(a[i]) >= abs(a[j])
