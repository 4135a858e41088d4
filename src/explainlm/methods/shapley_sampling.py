"""Coalition sampling for KernelSHAP: i.i.d. paired kernel sampling, and leverage-score sampling.

* ``kernel`` (Lundberg & Lee, 2017; Covert & Lee, 2021 for pairing): coalition sizes drawn with
  probability ∝ the Shapley kernel's mass of each size, (d − 1)/(s(d − s)); members uniform; each
  coalition followed by its complement; duplicates kept (each draw counts once in the regression).
* ``leverage`` (Musco & Witter, 2025, *Provably Accurate Shapley Value Estimation via Leverage
  Score Sampling*): the leverage scores of the Shapley regression's rows are equal for every
  coalition size, so the budget is split evenly over the sizes 1..d−1 (a size with fewer
  coalitions than its share is enumerated whole and the rest goes to the others), coalitions of a
  size are drawn uniformly **without replacement**, paired with their complements, and each row is
  weighted by its kernel weight over its inclusion probability (Horvitz–Thompson). When the budget
  covers every coalition the result is the exact Shapley values.

Both return keep-masks whose rows 0 and 1 are ∅ and the full set, and the regression weight of
every row (rows 0 and 1: unused).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

SAMPLING = ("leverage", "kernel")


def kernel_weight(d: int, s: np.ndarray) -> np.ndarray:
    """The Shapley kernel (d − 1) / (C(d, s) s (d − s)) of coalitions of size s (0 < s < d)."""
    comb = np.array([math.comb(d, int(k)) for k in s], dtype=np.float64)
    return (d - 1) / (comb * s * (d - s))


def kernel_coalitions(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: ∅, all, then paired draws with size ∝ the kernel's mass (weights uniform)."""
    sizes = np.arange(1, d)
    p = (d - 1) / (sizes * (d - sizes))
    p = p / p.sum()
    rows = [np.zeros(d, dtype=bool), np.ones(d, dtype=bool)]
    while len(rows) < n:
        k = rng.choice(sizes, p=p)
        row = np.zeros(d, dtype=bool)
        row[rng.choice(d, size=k, replace=False)] = True
        rows += [row, ~row]
    m = np.array(rows[:n])
    return m, np.ones(len(m))


def size_budget(d: int, n: int) -> dict[int, int]:
    """Rows per size group s ≤ d/2 (a coalition of size s and its complement of size d − s: two
    rows): the budget ``n`` split evenly over the sizes 1..d−1 (the middle size d/2 is one size,
    the others two), a size with fewer coalitions than its share enumerated whole."""
    cap = {s: math.comb(d, s) * (1 if 2 * s == d else 2) for s in range(1, d // 2 + 1)}
    sizes = {s: 1 if 2 * s == d else 2 for s in cap}  # how many coalition sizes a group covers
    budget = dict.fromkeys(cap, 0)
    left = max(n, 0) - max(n, 0) % 2
    open_groups = list(cap)
    while left >= 2 and open_groups:
        per_size = left / sum(sizes[s] for s in open_groups)
        progressed = False
        for s in list(open_groups):
            take = min(max(2, int(per_size * sizes[s])), cap[s] - budget[s], left)
            take -= take % 2
            budget[s] += take
            left -= take
            progressed = progressed or take > 0
            if cap[s] - budget[s] < 2:
                open_groups.remove(s)
            if left < 2:
                break
        if not progressed:
            break
    return budget


def _draw(d: int, s: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``k`` distinct coalitions of size ``s``, uniformly without replacement."""
    middle = 2 * s == d
    total = math.comb(d, s) // (2 if middle else 1)
    if k >= total:
        out = []
        for idx in _combinations(d, s):
            if middle and 0 not in idx:  # one of each complementary pair
                continue
            row = np.zeros(d, dtype=bool)
            row[list(idx)] = True
            out.append(row)
        return out
    seen: set[bytes] = set()
    out = []
    while len(out) < k:
        row = np.zeros(d, dtype=bool)
        row[rng.choice(d, size=s, replace=False)] = True
        key = np.packbits(row).tobytes()
        if middle:  # a pair at the middle size: the complement is drawn with it
            key = min(key, np.packbits(~row).tobytes())
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _combinations(d: int, s: int) -> itertools.combinations:
    return itertools.combinations(range(d), s)


def leverage_coalitions(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows (at most 2^d): ∅, all, then paired coalitions by leverage score, and weights."""
    budget = size_budget(d, n - 2)
    rows = [np.zeros(d, dtype=bool), np.ones(d, dtype=bool)]
    weights = [0.0, 0.0]
    for s, rows_s in budget.items():
        if rows_s <= 0:
            continue
        middle = 2 * s == d
        pairs = rows_s // 2
        drawn = _draw(d, s, pairs, rng)
        # inclusion probability of one coalition of size s (the complement's is the same)
        total = math.comb(d, s) / (2 if middle else 1)
        pi = min(1.0, len(drawn) / total)
        w = float(kernel_weight(d, np.array([s]))[0]) / pi
        for row in drawn:
            rows += [row, ~row]
            weights += [w, w]
    return np.array(rows), np.array(weights)
