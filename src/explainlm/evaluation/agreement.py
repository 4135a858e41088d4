"""Agreement between methods: how similarly do two methods rank the same text's units?"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from explainlm.evaluation.base import feature_scores
from explainlm.evaluation.stats import rank_correlation
from explainlm.explanation import Explanation


def method_agreement(explanations: Sequence[Explanation]) -> list[dict[str, Any]]:
    """Spearman rank correlation between every two methods' scores on the same text.

    One row per (text, method a, method b) with ``a < b``; texts explained by one method only give
    no rows. Constant score vectors give NaN.
    """
    by_text: dict[tuple[str, str], list[Explanation]] = {}
    for e in explanations:
        by_text.setdefault((e.text, e.granularity), []).append(e)
    rows = []
    for t, ((text, _), group) in enumerate(by_text.items()):
        for a, b in itertools.combinations(sorted(group, key=lambda e: e.method), 2):
            rho = rank_correlation(feature_scores(a), feature_scores(b))
            rows.append({"example": t, "text": text, "a": a.method, "b": b.method, "spearman": rho})
    return rows
