"""Statistics of the audits: intervals, tests and multiple-comparison corrections (vectorised numpy).

* :func:`wilson_ci` — the Wilson score interval of a proportion (Wilson 1927), used for
  "% of pairs preferring the stereotype" style rates;
* :func:`binomial_p` — the exact two-sided binomial test (scipy), e.g. against 50 %;
* :func:`paired_summary` — mean paired difference with a percentile-bootstrap CI, the Wilcoxon
  signed-rank test and a sign-flip permutation test;
* :func:`adjust_pvalues` — Holm's step-down (family-wise error, the default) or Benjamini–Hochberg
  (false-discovery rate) adjustment of a family of p-values.

>>> [round(x, 3) for x in wilson_ci(8, 10)]
[0.49, 0.943]
>>> [round(p, 3) for p in adjust_pvalues([0.01, 0.04, 0.03], "holm")]
[0.03, 0.06, 0.06]
>>> [round(p, 3) for p in adjust_pvalues([0.01, 0.04, 0.03], "bh")]
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.errors import UserError

CORRECTIONS = ("holm", "bh", "none")
CORRECTION_NAMES = {
    "holm": "Holm step-down (family-wise error rate)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
    "none": "no correction",
}


def check_correction(name: str) -> str:
    if name not in CORRECTIONS:
        raise UserError(f"unknown correction {name!r}; use one of {', '.join(CORRECTIONS)}")
    return name


def adjust_pvalues(p: Sequence[float | None], method: str = "holm") -> list[float]:
    """Adjusted p-values (NaN / None entries stay NaN and are not counted in the family)."""
    check_correction(method)
    arr = np.array([np.nan if v is None else float(v) for v in p], dtype=np.float64)
    out = np.full(arr.shape, np.nan)
    ok = np.isfinite(arr)
    vals = arr[ok]
    m = vals.size
    if m == 0:
        return out.tolist()
    if method == "none":
        adj = vals
    elif method == "holm":
        order = np.argsort(vals, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * vals[order])
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    else:  # Benjamini-Hochberg
        order = np.argsort(vals, kind="stable")
        ranked = vals[order] * m / np.arange(1, m + 1)
        stepped = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    out[ok] = adj
    return out.tolist()


def wilson_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (NaN for ``n = 0``); its bound
    at 0 (``k = 0``) or 1 (``k = n``) is exact, not a rounding error away."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k <= 0 else max(0.0, centre - half)
    high = 1.0 if k >= n else min(1.0, centre + half)
    return low, high


def binomial_p(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test of ``k`` successes in ``n`` trials against rate ``p``."""
    if n <= 0:
        return float("nan")
    from scipy.stats import binomtest

    return float(binomtest(int(k), int(n), p).pvalue)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (non-finite replicates dropped)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(s, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap CI of the mean (non-finite values dropped)."""
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return float("nan"), float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // a.size)
    for s in range(0, n_boot, chunk):
        k = min(chunk, n_boot - s)
        means[s : s + k] = a[rng.integers(0, a.size, size=(k, a.size))].mean(axis=1)
    lo, hi = percentile_ci(means, level)
    return float(a.mean()), lo, hi


def sign_flip_p(d: np.ndarray, *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value of the mean of paired differences ``d``."""
    d = np.asarray(d, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(np.abs(d) > 1e-12):
        return 1.0
    rng = np.random.default_rng(seed)
    observed = abs(d.mean())
    hits = 0
    chunk = max(1, 2_000_000 // d.size)
    for s in range(0, n_perm, chunk):
        k = min(chunk, n_perm - s)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(k, d.size))
        hits += int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum())
    return (hits + 1) / (n_perm + 1)


def paired_summary(
    diffs: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    n_perm: int = 10000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean paired difference, its bootstrap CI, Wilcoxon and sign-flip permutation p-values."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    mean, lo, hi = bootstrap_mean(d, n_boot=n_boot, level=level, seed=seed)
    nonzero = d[np.abs(d) > 1e-12]
    if nonzero.size:
        from scipy.stats import wilcoxon

        p_w = float(wilcoxon(nonzero, zero_method="wilcox").pvalue)
    else:
        p_w = 1.0 if d.size else float("nan")
    return {
        "n": int(d.size),
        "mean": mean,
        "ci": [lo, hi],
        "p_wilcoxon": p_w,
        "p_permutation": sign_flip_p(d, n_perm=n_perm, seed=seed) if d.size else float("nan"),
        "max_abs": float(np.max(np.abs(d))) if d.size else float("nan"),
    }


def clean(obj: Any) -> Any:
    """A JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def fmt_p(p: float | None) -> str:
    """``p = 0.003``, ``p < 0.001``, ``p = n/a``."""
    if p is None or not math.isfinite(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def fmt_ci(value: float | None, ci: Sequence[float | None] | None, digits: int = 2) -> str:
    """``0.72 [0.61, 0.85]`` (the interval left out when there is none)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    small = 0 < abs(value) < 10**-digits

    def f(v: float) -> str:
        return f"{v:.2g}" if small else f"{v:.{digits}f}"

    out = f(value)
    if ci and ci[0] is not None and ci[1] is not None and all(map(math.isfinite, ci)):
        out += f" [{f(ci[0])}, {f(ci[1])}]"
    return out
