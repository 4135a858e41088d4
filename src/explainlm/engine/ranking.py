"""Rankings of features by score and the top-k feature sets cut from them (ERASER's and ferret's
bins), shared by the faithfulness metrics and the check computed with every explanation.

>>> top_k_sets(np.array([0.1, 0.5, -0.2, 0.3]), [0.25, 0.5])
[array([1]), array([1, 3])]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def ranking(scores: np.ndarray) -> np.ndarray:
    """Feature indices from the highest score to the lowest (ties: earlier position first)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_k_count(n: int, fraction: float, rounding: str = "floor") -> int:
    """How many of ``n`` features make up the top ``fraction``.

    ``floor`` is ferret's ``int(fraction * n)`` (0 for short texts: that bin is skipped);
    ``ceil`` rounds up, so every bin keeps at least one feature.
    """
    if rounding == "floor":
        return int(fraction * n)
    return min(n, max(1, math.ceil(fraction * n - 1e-9)))


def top_k_sets(
    scores: np.ndarray,
    fractions: Sequence[float],
    *,
    rounding: str = "floor",
    only_positive: bool = False,
) -> list[np.ndarray]:
    """The top-k feature sets of the bins, as ferret builds them.

    A bin with k = 0 (or, with ``only_positive``, no positive score among the top k) is skipped,
    and so is a bin whose set equals the previous kept bin's (ferret's de-duplication).
    """
    s = np.asarray(scores, dtype=np.float64)
    order = ranking(s)
    out: list[np.ndarray] = []
    last: set[int] | None = None
    for q in fractions:
        k = top_k_count(s.size, float(q), rounding)
        if k <= 0:
            continue
        idx = order[:k]
        if only_positive:
            idx = idx[s[idx] > 0]
        if idx.size == 0:
            continue
        if last is not None and set(idx.tolist()) == last:
            continue
        last = set(idx.tolist())
        out.append(idx)
    return out
