"""The method contract for a classifier's target (mixed into :class:`~explainlm.engine.Engine`).

One output per item (the target: a class score, probability, log-odds or contrast). Features are
the text's word units or text tokens; a keep-mask's variant is scored by the batched class-score
passes; gradient and attention maps are read at the position that makes the prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from explainlm.engine.contract import (
    Attribution,
    ReduceFn,
    RowsFn,
    ScoreCache,
    merge_cached,
    split_cached,
    stable_key,
)
from explainlm.engine.masks import check_masks, encoding_features, mask_variants, sentence_ids
from explainlm.errors import UserError
from explainlm.explanation import Explanation
from explainlm.models.wrapper import Encoding

if TYPE_CHECKING:
    from explainlm.engine.core import Engine, Item


class ClassificationContract:
    """``feature_count``, ``score_masks``, ``gradients``, ``attention_maps`` and ``result`` for a
    classifier (see :class:`~explainlm.engine.contract.AttributionEngine`)."""

    scores_cache: ScoreCache | None

    def _init_contract(self, reuse_scores: bool) -> None:
        self.scores_cache = ScoreCache() if reuse_scores else None

    # ----------------------------------------------------------------------------- items
    def item_key(self: Engine, item: Item) -> str:
        """Identity of an item: its full token sequence and its target (kind, label, foil)."""
        enc = item.encoding
        return stable_key(
            "classification", enc.sequence, list(enc.input_ids), self.target.kind,
            item.label_idx, item.foil_idx,
        )  # fmt: skip

    def n_outputs(self, item: Item) -> int:
        return 1

    def feature_count(self, item: Item, granularity: str, *, shared: bool = False) -> int:
        return encoding_features(item.encoding, granularity)

    def full_values(self, item: Item) -> np.ndarray:
        return np.array([item.target_value])

    def check_method(self, method: Any) -> None:
        """Every method can explain a classifier's target."""

    # --------------------------------------------------------------------- perturbations
    def score_masks(
        self: Engine,
        items: Sequence[Item],
        masks: Sequence[np.ndarray],
        granularity: str,
        replace: str = "remove",
    ) -> list[np.ndarray]:
        """Target values ``[n_masks, 1]`` of each item under each keep-mask over its features."""
        masks = [
            check_masks(m, [self.feature_count(it, granularity)])
            for it, m in zip(items, masks, strict=True)
        ]
        # the engine's current target is part of the key: a copy of the engine with another target
        # (a method differentiating another function of the class scores) shares the cache
        keys = [f"{it.key or self.item_key(it)}|{self.target.name}" for it in items]
        known, todo = split_cached(self.scores_cache, keys, masks, granularity, replace)

        def encode(texts: list[str]) -> list[Encoding]:
            return self.classifier.encode(texts, allow_empty=True)

        variants = mask_variants(
            self.wrapper, [it.encoding for it in items], todo, granularity, replace, encode
        )
        values = self.score_encodings(items, variants)
        computed = [v.reshape(-1, 1) for v in values]
        return merge_cached(
            self.scores_cache, keys, masks, granularity, replace, known, todo, computed,
            [1] * len(items),
        )  # fmt: skip

    # ------------------------------------------------------------------- gradients, attention
    def gradients(
        self: Engine,
        items: Sequence[Item],
        n_rows: int,
        rows_fn: RowsFn,
        reduce_fn: ReduceFn,
        *,
        seed: int = 0,
    ) -> list[list[Mapping[str, Any]]]:
        """Per item, one output: the reduced gradient map (see :meth:`embedding_gradients`)."""
        return [[r] for r in self.embedding_gradients(items, n_rows, rows_fn, reduce_fn, seed=seed)]

    def query_position(self: Engine, length: int) -> int:
        """The position that makes the prediction: the first token of an encoder, the last of a
        decoder."""
        return length - 1 if self.wrapper.is_decoder else 0

    def attention_maps(self: Engine, items: Sequence[Item]) -> list[tuple[torch.Tensor, list[int]]]:
        return [(att, [self.query_position(att.shape[-1])]) for att in self.attentions(items)]

    # ---------------------------------------------------------------------------- results
    def result(
        self: Engine,
        item: Item,
        method: Any,
        attribution: Attribution,
        granularity: str,
        seconds: float,
    ) -> Explanation:
        """The :class:`Explanation` of one item from a method's :class:`Attribution`."""
        enc = item.encoding
        row = np.nan_to_num(attribution.scores[0], nan=0.0)
        token_scores: np.ndarray | None
        if attribution.units == "tokens":
            token_scores = np.zeros(len(enc))
            token_scores[: min(row.size, len(enc))] = row[: len(enc)]
            word_scores = word_sums(enc, token_scores)
        elif granularity == "word":
            token_scores = None
            word_scores = _padded(row, len(enc.word_spans))
        elif granularity == "sentence":
            token_scores = None
            word_scores = np.zeros(len(enc.word_spans))  # filled from the sentences below
        else:
            token_scores = np.zeros(len(enc))
            token_scores[enc.text_token_positions] = _padded(row, len(enc.text_token_positions))
            word_scores = word_sums(enc, token_scores)
        if granularity == "token" and token_scores is None:
            raise UserError(f"{method.name} gave no token scores")
        sentences, sentence_scores = _sentences(
            enc, granularity, attribution.units, row, word_scores
        )
        if sentence_scores is not None:  # every word carries its sentence's score
            word_scores = np.asarray(sentence_scores)[sentence_ids(enc.text, enc.word_spans)]
        diagnostics = attribution.output_diagnostics(0)
        diagnostics.setdefault("precision", self.precision_of(method))
        delta = diagnostics.get("delta")
        probs = item.scores.softmax(-1)
        labels = self.classifier.labels
        return Explanation(
            text=enc.text,
            method=method.name,
            target=self.target.name,
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
            params=dict(method.params),
            delta=None if delta is None else float(delta),
            target_value=item.target_value,
            seconds=seconds,
            model=self.classifier.name,
            warnings=list(enc.warnings),
            diagnostics=diagnostics,
            sentences=sentences,
            sentence_scores=sentence_scores,
        )


def _sentences(
    enc: Encoding, granularity: str, units: str, row: np.ndarray, word_scores: np.ndarray
) -> tuple[list[str], list[float] | None]:
    """Sentence granularity: the sentences' texts and scores (a token-level method's score of a
    sentence is the sum over its words); otherwise no sentences."""
    if granularity != "sentence":
        return [], None
    groups = sentence_ids(enc.text, enc.word_spans)
    n = int(groups.max()) + 1 if groups.size else 0
    if units == "tokens":
        scores = np.bincount(groups, weights=np.asarray(word_scores), minlength=n)
    else:
        scores = _padded(row, n)
    spans = enc.word_spans
    texts = [
        enc.text[
            spans[int(np.flatnonzero(groups == g)[0])][0] : spans[
                int(np.flatnonzero(groups == g)[-1])
            ][1]
        ]
        for g in range(n)
    ]
    return texts, [float(v) for v in scores]


def _padded(row: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n)
    out[: min(n, row.size)] = row[:n]
    return out


def word_sums(encoding: Encoding, token_scores: np.ndarray) -> np.ndarray:
    """Sum token scores into word units (special and template tokens excluded)."""
    out = np.zeros(len(encoding.word_spans))
    for s, wid, sp in zip(token_scores, encoding.word_ids, encoding.special, strict=True):
        if wid >= 0 and not sp:
            out[wid] += float(s)
    return out
