"""The metric contract: ``Metric(**params).compute(engine, cases)`` → one result dict per case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from explainlm.configurable import Configurable
from explainlm.engine import Engine, Item
from explainlm.explanation import Explanation


@dataclass
class Case:
    """One explanation to evaluate: its per-feature scores, the model item, the human rationale.

    ``scores`` are per feature: word units (word granularity) or the text's tokens (token
    granularity; special and template tokens are never features, so they are always kept).
    ``item`` is the engine's item for the text, whose target is the probability of the explained
    label (``None`` for metrics that need no model).
    """

    explanation: Explanation
    scores: np.ndarray
    item: Item | None = None
    rationale: np.ndarray | None = None

    @property
    def granularity(self) -> str:
        return self.explanation.granularity

    @property
    def n(self) -> int:
        return int(self.scores.size)


class Metric(Configurable):
    """Base class: subclasses set the class attributes and implement :meth:`compute`.

    ``higher_is_better`` orients the metric; ``needs`` lists ``"model"`` and/or ``"rationale"``.
    """

    family: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ()

    def compute(self, engine: Engine | None, cases: Sequence[Case]) -> list[dict[str, Any]]:
        raise NotImplementedError
