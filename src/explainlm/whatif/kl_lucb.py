"""KL confidence bounds for Bernoulli means and the KL-LUCB arm selection rule.

Kaufmann & Kalyanakrishnan (2013), "Information Complexity in Bandit Subset Selection": after ``n``
draws with empirical mean p̂, the mean lies in ``{q : n · KL(p̂, q) ≤ β}``; KL-LUCB samples the
weakest of the empirical top-m (lowest lower bound) and the strongest of the rest (highest upper
bound) until the two intervals overlap by less than ε. Anchors (Ribeiro et al. 2018) use it to find
the most precise candidate rules with few model queries.

>>> lo, hi = kl_lower(0.9, 0.1), kl_upper(0.9, 0.1)
>>> round(lo, 3) < 0.9 < round(hi, 3)
True
>>> kl_bernoulli(0.5, 0.5)
0.0
"""

from __future__ import annotations

import math

import numpy as np

_EPS = 1e-12


def kl_bernoulli(p: float, q: float) -> float:
    """KL(Bernoulli(p) ‖ Bernoulli(q))."""
    p = min(max(p, _EPS), 1 - _EPS)
    q = min(max(q, _EPS), 1 - _EPS)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def kl_upper(p: float, level: float, iters: int = 40) -> float:
    """The largest q ≥ p with KL(p, q) ≤ ``level`` (bisection)."""
    lo, hi = p, 1.0
    if kl_bernoulli(p, hi) <= level:
        return 1.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if kl_bernoulli(p, mid) > level:
            hi = mid
        else:
            lo = mid
    return hi


def kl_lower(p: float, level: float, iters: int = 40) -> float:
    """The smallest q ≤ p with KL(p, q) ≤ ``level`` (bisection)."""
    lo, hi = 0.0, p
    if kl_bernoulli(p, lo) <= level:
        return 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if kl_bernoulli(p, mid) > level:
            lo = mid
        else:
            hi = mid
    return lo


def interval(positives: float, n: float, beta: float) -> tuple[float, float, float]:
    """(mean, lower, upper) of a Bernoulli mean after ``n`` draws at exploration level ``beta``."""
    if n <= 0:
        return float("nan"), 0.0, 1.0
    mean = float(positives) / float(n)
    return mean, float(kl_lower(mean, beta / n)), float(kl_upper(mean, beta / n))


def exploration_rate(n_arms: int, t: int, delta: float) -> float:
    """β(t, δ) of KL-LUCB: log(k₁ n t^α / δ) + log log(…), with α = 1.1, k₁ = 405.5."""
    temp = math.log(405.5 * n_arms * t**1.1 / delta)
    return temp + math.log(temp)


def lucb_pair(
    positives: np.ndarray, counts: np.ndarray, top_n: int, beta: float
) -> tuple[int, int, float]:
    """(u_t, l_t, gap): the strongest arm outside the empirical top-``top_n`` (highest upper bound),
    the weakest inside it (lowest lower bound), and ``ub[u_t] − lb[l_t]``.
    """
    means = positives / np.maximum(counts, 1)
    order = np.argsort(means, kind="stable")
    inside, outside = order[-top_n:], order[:-top_n]
    lb = np.array([kl_lower(means[a], beta / counts[a]) for a in inside])
    lt = int(inside[int(np.argmin(lb))])
    if len(outside) == 0:
        return lt, lt, 0.0
    ub = np.array([kl_upper(means[a], beta / counts[a]) for a in outside])
    ut = int(outside[int(np.argmax(ub))])
    return ut, lt, float(ub.max() - lb.min())
