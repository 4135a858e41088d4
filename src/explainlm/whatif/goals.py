"""What an edit has to achieve: flip the prediction (to a label, or away from the predicted one), or
move it by a margin.

The *objective* is p(target) with a target label, else 1 − p(predicted label). A flip needs the new
argmax with a gap of at least ``MIN_GAP`` in probability (so a reported flip survives re-scoring in
another batch); a margin goal needs the objective to rise by ``margin``.

>>> import numpy as np
>>> g, why = make_goal(np.array([0.2, 0.8]), ["negative", "positive"])
>>> g.reached(np.array([0.6, 0.4])), g.reached(np.array([0.4, 0.6]))
(True, False)
>>> make_goal(np.array([0.2, 0.8]), ["negative", "positive"], target="positive")[1]
"already predicted 'positive' (p = 0.800): nothing to flip; choose another target or a margin"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainlm.targets import label_index

MIN_GAP = 1e-3


@dataclass(frozen=True)
class Goal:
    original: int
    target: int | None  # None: any label but the original
    toward: int  # the label edits move towards (target, or the runner-up)
    margin: float | None
    base: float  # objective of the unedited text

    def value(self, p: np.ndarray) -> float:
        return float(p[self.target]) if self.target is not None else 1.0 - float(p[self.original])

    def reached(self, p: np.ndarray) -> bool:
        if self.margin is not None:
            return self.value(p) - self.base >= self.margin
        top = int(np.argmax(p))
        if self.target is not None:
            others = np.delete(p, self.target)
            return top == self.target and float(p[self.target] - others.max()) > MIN_GAP
        rest = np.delete(p, self.original)
        return top != self.original and float(rest.max() - p[self.original]) > MIN_GAP

    def describe(self, labels: Sequence[str]) -> dict[str, Any]:
        return {
            "original": labels[self.original],
            "target": None if self.target is None else labels[self.target],
            "toward": labels[self.toward],
            "margin": self.margin,
            "objective": "p(target)" if self.target is not None else "1 - p(original)",
            "base": self.base,
        }


def make_goal(
    p: np.ndarray, labels: Sequence[str], target: str | None = None, margin: float | None = None
) -> tuple[Goal, str | None]:
    """The goal for a text with probabilities ``p``, and why it cannot be searched (or None)."""
    original = int(np.argmax(p))
    if target is not None:
        t = label_index(list(labels), target)
        goal = Goal(original, t, t, margin, float(p[t]))
        if margin is None and t == original:
            return goal, (
                f"already predicted {labels[t]!r} (p = {p[t]:.3f}): nothing to flip; "
                "choose another target or a margin"
            )
    else:
        rest = p.copy()
        rest[original] = -np.inf
        goal = Goal(original, None, int(np.argmax(rest)), margin, 1.0 - float(p[original]))
    if margin is not None and goal.base + margin > 1.0 + 1e-12:
        return goal, (
            f"the objective {goal.describe(labels)['objective']} is already {goal.base:.3f}: "
            f"it cannot rise by {margin}"
        )
    return goal, None
