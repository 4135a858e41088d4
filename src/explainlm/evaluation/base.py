"""The metric contract (``Metric(**params).compute(engine, cases)`` → one result dict per case),
the metric registry, and the two steps every metric shares: an explanation's per-feature scores
(:func:`feature_scores`) and model items whose target is the explained label (:func:`prepare_items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch

from explainlm.configurable import Configurable
from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.explanation import Explanation
from explainlm.registry import Registry


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


METRICS: Registry[type[Metric]] = Registry("metric")
"""Every metric by name; a new metric is a :class:`Metric` subclass decorated ``@METRICS.register()``."""


def get_metric(name: str, **params: Any) -> Metric:
    """Instantiate a registered metric by name with its parameters."""
    return METRICS[name](**params)


def feature_scores(e: Explanation, item: Item | None = None) -> np.ndarray:
    """An explanation's per-feature scores: its words, or its text's (non-special) tokens.

    With the model's ``item`` for the text, the count is checked against the model's units (an
    explanation made by another model or tokenizer is an error, not silently misaligned).
    """
    if e.granularity == "sentence":
        from explainlm.engine.masks import encoding_features

        s = np.asarray(e.feature_scores(), dtype=np.float64)
        if item is not None and encoding_features(item.encoding, "sentence") != s.size:
            raise UserError(
                f"{e.method}: {s.size} sentence scores for "
                f"{encoding_features(item.encoding, 'sentence')} sentences of {e.text[:40]!r}"
            )
        return s
    if e.granularity == "word":
        s = np.asarray(e.word_scores, dtype=np.float64)
        if item is not None and len(item.encoding.word_spans) != s.size:
            raise UserError(
                f"{e.method}: {s.size} word scores for {len(item.encoding.word_spans)} words of "
                f"{e.text[:40]!r} (was it explained by another model?)"
            )
        return s
    if e.token_scores is None:
        raise UserError(f"{e.method} has no token-level scores")
    special = e.token_special or [False] * len(e.token_scores)
    s = np.asarray(
        [v for v, sp in zip(e.token_scores, special, strict=True) if not sp], dtype=np.float64
    )
    if item is not None and len(item.encoding.text_token_positions) != s.size:
        raise UserError(
            f"{e.method}: token scores do not match the model's tokens of {e.text[:40]!r}"
        )
    return s


def prepare_items(
    engine: Engine, texts: Sequence[str], labels: Sequence[str], *, truncation: bool = True
) -> list[Item]:
    """Engine items whose target is the engine target's value for a given label of each text."""
    items = engine.prepare(list(texts), truncation=truncation)
    out = []
    for it, lab in zip(items, labels, strict=True):
        idx = engine.classifier.label_index(lab)
        value = engine.target.value(it.scores.unsqueeze(0), torch.tensor([idx]))
        out.append(replace(it, label_idx=idx, target_value=float(value[0])))
    return out
