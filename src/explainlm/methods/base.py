"""The uniform method contract: ``Method(**params).attribute(engine, items, granularity)``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.configurable import Configurable
from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.explanation import Explanation

GRANULARITIES = ("word", "token")


class Method(Configurable):
    """Base class: subclasses set ``name``, ``defaults`` and implement :meth:`_attribute`.

    ``_attribute`` returns, per item, a dict with ``token_scores`` (a score per model token) or
    ``word_scores`` (a score per word unit), and optionally ``delta``.
    """

    def attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str = "word"
    ) -> list[Explanation]:
        """Explain every item with this method, all items sharing the engine's batched passes."""
        if granularity not in GRANULARITIES:
            raise UserError(f"granularity must be one of {', '.join(GRANULARITIES)}")
        start = time.perf_counter()
        raw = self._attribute(engine, items, granularity)
        per_item = (time.perf_counter() - start) / max(len(items), 1)
        return [
            build_explanation(engine, it, self.name, dict(self.params), granularity, r, per_item)
            for it, r in zip(items, raw, strict=True)
        ]

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        raise NotImplementedError


def word_sums(item: Item, token_scores: np.ndarray) -> np.ndarray:
    """Sum token scores into word units (special and template tokens excluded)."""
    enc = item.encoding
    out = np.zeros(len(enc.word_spans))
    for s, wid, sp in zip(token_scores, enc.word_ids, enc.special, strict=True):
        if wid >= 0 and not sp:
            out[wid] += float(s)
    return out


def build_explanation(
    engine: Engine,
    item: Item,
    method: str,
    params: dict[str, Any],
    granularity: str,
    raw: dict[str, Any],
    seconds: float,
) -> Explanation:
    enc = item.encoding
    token_scores = raw.get("token_scores")
    if token_scores is not None:
        token_scores = np.asarray(token_scores, dtype=np.float64)
        word_scores = word_sums(item, token_scores)
    else:
        word_scores = np.asarray(raw["word_scores"], dtype=np.float64)
        if granularity == "token":
            raise UserError(f"{method} gave no token scores")
    probs = item.scores.softmax(-1)
    labels = engine.classifier.labels
    return Explanation(
        text=enc.text,
        method=method,
        target=engine.target.name,
        label=labels[item.label_idx],
        predicted=labels[item.predicted],
        probs={lab: float(p) for lab, p in zip(labels, probs, strict=True)},
        words=enc.words,
        word_scores=[float(v) for v in word_scores],
        tokens=list(enc.tokens),
        token_scores=None if token_scores is None else [float(v) for v in token_scores],
        token_special=list(enc.special),
        word_ids=list(enc.word_ids),
        granularity=granularity,
        params={k: v for k, v in params.items()},
        delta=raw.get("delta"),
        target_value=item.target_value,
        seconds=seconds,
        model=engine.classifier.name,
        warnings=list(enc.warnings),
    )
