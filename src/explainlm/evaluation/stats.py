"""Statistics: seeded percentile-bootstrap confidence intervals and paired tests between methods.

>>> m, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0], seed=0)
>>> m, lo <= m <= hi
(2.5, True)
>>> paired_test([1, 2, 3], [1, 2, 3])
1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TESTS = ("wilcoxon", "permutation")


def rank_correlation(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman ρ of two score vectors; NaN unless they have the same size > 1 and neither is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size != y.size or x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _clean(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def bootstrap_ci(
    values: Sequence[float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean and its percentile-bootstrap ``level`` interval (non-finite values dropped).

    ``n_boot`` resamples with replacement from a ``numpy`` generator seeded with ``seed``; an empty
    input gives NaNs, a single value a zero-width interval.
    """
    a = _clean(values)
    if a.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(a.mean())
    if a.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    means = a[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(lo), float(hi)


def paired_test(
    a: Sequence[float],
    b: Sequence[float],
    *,
    test: str = "wilcoxon",
    n_perm: int = 10000,
    seed: int = 0,
) -> float:
    """Two-sided p-value that paired values ``a`` and ``b`` have the same location.

    ``wilcoxon``: the Wilcoxon signed-rank test (scipy; zero differences dropped, ``wilcox``
    method); ``permutation``: a sign-flip permutation test of the mean difference with ``n_perm``
    seeded flips (p = (hits + 1) / (n_perm + 1)). Pairs with a non-finite value are dropped; no
    non-zero difference gives p = 1.
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; use one of {', '.join(TESTS)}")
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("paired_test needs two sequences of the same length")
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    d = d[np.abs(d) > 1e-12]
    if d.size == 0:
        return 1.0
    if test == "wilcoxon":
        from scipy.stats import wilcoxon

        return float(wilcoxon(d, zero_method="wilcox").pvalue)
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    signs = rng.choice([-1.0, 1.0], size=(n_perm, d.size))
    hits = int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-15).sum())
    return (hits + 1) / (n_perm + 1)
