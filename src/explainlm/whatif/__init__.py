"""What-if analyses: counterfactual edits, adversarial attacks, anchors and contrast sets.

"What would have to change for the model to decide otherwise?" Every search here runs on the
engine: the edited texts of all texts under analysis are scored together in packed passes
(:mod:`explainlm.whatif.oracle`).
"""

from __future__ import annotations

from explainlm.whatif.counterfactuals import (
    Counterfactual,
    CounterfactualConfig,
    CounterfactualGenerator,
    CounterfactualResult,
)
from explainlm.whatif.goals import Goal, make_goal
from explainlm.whatif.oracle import Oracle, QueryCounter, drive
from explainlm.whatif.text import Edit, EditedText, WordText, apply_edits, diff_words

__all__ = [
    "Counterfactual",
    "CounterfactualConfig",
    "CounterfactualGenerator",
    "CounterfactualResult",
    "Edit",
    "EditedText",
    "Goal",
    "Oracle",
    "QueryCounter",
    "WordText",
    "apply_edits",
    "diff_words",
    "drive",
    "make_goal",
]
