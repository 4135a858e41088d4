"""The method contract for generated text: every generated token is an output.

A :class:`GenerationItem` is one prompt and its continuation (generated, or given and teacher
forced). Outputs are the continuation's tokens (per-token targets: ``token_logprob``, ``token_prob``,
``contrast`` against a foil) or the whole continuation (``sequence_logprob``, one output). Features
are the prompt's units (words or text tokens) followed by the generated tokens before the last
(which later tokens see); ``shared=True`` counts the prompt's units only.

Keep-masks become teacher-forced rows reusing their item's KV cache (:mod:`.plan`); gradient maps
run each output as one next-token item of the classification engine on
:class:`~explainlm.generation.scorer.NextTokenScorer`; attention maps come from one pass over the
prompt and the continuation, read at each output's query position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explainlm.engine import Attribution, Engine, Item
from explainlm.engine.contract import (
    ReduceFn,
    RowsFn,
    ScoreCache,
    merge_cached,
    split_cached,
    stable_key,
)
from explainlm.engine.masks import check_masks, encoding_features
from explainlm.errors import UserError
from explainlm.generation.matrix import build_attribution
from explainlm.generation.plan import ContinuationPlan
from explainlm.generation.result import GenerationAttribution
from explainlm.generation.scorer import NextTokenScorer, class_target_for, extend
from explainlm.models import Generation, Generator
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.models.precision import PrecisionPlan
from explainlm.models.wrapper import Encoding
from explainlm.progress import Progress
from explainlm.targets import GenerationTarget


@dataclass
class GenerationItem:
    """One generation to explain: the prompt, its continuation, the foil ids aligned by position."""

    index: int
    generation: Generation
    foil: list[int] | None = None
    key: str = ""
    full: np.ndarray | None = None  # target value of each output on the unperturbed prompt

    @property
    def rows(self) -> int:
        """Generated tokens explained (a contrast stops at the end of the shorter of the two)."""
        m = len(self.generation.token_ids)
        return m if self.foil is None else min(m, len(self.foil))

    @property
    def prompt(self) -> Encoding:
        return self.generation.prompt_encoding

    @property
    def text(self) -> str:
        return self.generation.prompt

    @property
    def continuation(self) -> list[int]:
        return list(self.generation.token_ids[: self.rows])

    @property
    def foil_ids(self) -> list[int] | None:
        return None if self.foil is None else list(self.foil[: self.rows])


class GenerationEngine:
    """Batched scoring of generated tokens against a :class:`GenerationTarget`."""

    kind = "generation"

    def __init__(
        self,
        generator: Generator,
        target: GenerationTarget | None = None,
        *,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        progress: Progress | bool | None = False,
        mixed_precision: bool = False,
        reuse_scores: bool = False,
        precision: str | PrecisionPlan = "fp32",
    ) -> None:
        self.generator = generator
        self.wrapper = generator.wrapper
        self.target = target or GenerationTarget()
        self.engine = Engine(
            NextTokenScorer(generator.wrapper),
            class_target_for(self.target),
            max_batch_tokens=max_batch_tokens,
            progress=progress,
            mixed_precision=mixed_precision,
            precision=precision,
        )
        self.scores_cache = ScoreCache() if reuse_scores else None
        self._active: Any = None

    @property
    def passes(self) -> int:
        return self.engine.passes

    @property
    def progress(self) -> Progress:
        return self.engine.progress

    def labelled(self, label: str, method: Any = None) -> contextlib.AbstractContextManager[None]:
        return self.engine.labelled(label, method)

    @property
    def sequence_target(self) -> bool:
        return self.target.kind == "sequence_logprob"

    # ------------------------------------------------------------------------------ items
    def teacher_force(
        self, prompts: Sequence[str], continuations: Sequence[str | Sequence[int]]
    ) -> list[Generation]:
        """Given continuations (texts or ids) scored by teacher forcing, in the engine's passes."""
        gen = self.generator
        if len(prompts) != len(continuations):
            raise UserError("give one target text per prompt")
        encodings = gen.encode(prompts)
        ids = [gen.continuation_ids(c) for c in continuations]
        logps = self.engine.continuation_logprobs(encodings, ids)
        return [
            Generation(
                e.text,
                self.wrapper.tokenizer.decode(c, skip_special_tokens=True),
                c,
                gen.decode_tokens(c),
                [float(v) for v in lp],
                e,
                list(e.warnings),
            )
            for e, c, lp in zip(encodings, ids, logps, strict=True)
        ]

    def prepare(
        self, generations: Sequence[Generation], foil: Sequence[int] | None = None
    ) -> list[GenerationItem]:
        """Items to explain; ``foil`` (token ids) is needed for a contrastive target."""
        if self.target.kind == "contrast" and foil is None:
            raise UserError("a contrastive target needs foil token ids")
        items = [
            GenerationItem(i, g, list(foil) if foil else None) for i, g in enumerate(generations)
        ]
        for it in items:
            if it.rows == 0:
                raise UserError(f"nothing was generated for {it.generation.prompt!r}")
            it.key = self.item_key(it)
        return items

    def item_key(self, item: GenerationItem) -> str:
        p = item.prompt
        return stable_key(
            "generation", p.sequence, list(p.input_ids), item.continuation, self.target.kind,
            item.foil_ids,
        )  # fmt: skip

    def n_outputs(self, item: GenerationItem) -> int:
        return 1 if self.sequence_target else item.rows

    def feature_count(self, item: GenerationItem, granularity: str, *, shared: bool = False) -> int:
        d = encoding_features(item.prompt, granularity)
        return d if shared or self.sequence_target else d + item.rows - 1

    def full_values(self, item: GenerationItem) -> np.ndarray:
        if item.full is None:
            d = self.feature_count(item, "word", shared=True)
            self.score_masks([item], [np.ones((1, d), dtype=bool)], "word")
        assert item.full is not None
        return item.full

    def target_values(self, logprobs: np.ndarray) -> np.ndarray:
        """From the read log-probs of one row (tokens, then foils) to the value of each output."""
        kind = self.target.kind
        if kind == "contrast":
            half = logprobs.size // 2
            return logprobs[:half] - logprobs[half:]
        if kind == "token_prob":
            return np.exp(logprobs)
        if kind == "sequence_logprob":
            return np.array([logprobs.sum()])
        return logprobs

    def check_method(self, method: Any) -> None:
        """Refuse, before any work, a method that cannot explain this target."""
        if method.is_legacy():
            raise UserError(
                f"{method.name} implements only the earlier classifier interface (_attribute); "
                "implement compute() to explain generated text"
            )
        maps = {"gradients", "attention"} & set(method.requires)
        if self.sequence_target and maps and not method.additive:
            raise UserError(
                f"{method.name} cannot explain a whole-sequence target (its map of a sum of token "
                "log-probs is not the sum of their maps); use a per-token target"
            )
        self._active = method

    # --------------------------------------------------------------------- perturbations
    def _encode_variants(self, texts: list[str]) -> list[Encoding]:
        return self.wrapper.encode(texts, chat=self.generator.chat, allow_empty=True)

    def score_masks(
        self,
        items: Sequence[GenerationItem],
        masks: Sequence[np.ndarray],
        granularity: str,
        replace: str = "remove",
    ) -> list[np.ndarray]:
        """Target values ``[n_masks, n_outputs]``; a mask covers the shared or all features."""
        masks = [
            check_masks(
                m,
                sorted(
                    {
                        self.feature_count(it, granularity, shared=True),
                        self.feature_count(it, granularity),
                    }
                ),
            )
            for it, m in zip(items, masks, strict=True)
        ]
        keys = [f"{it.key or self.item_key(it)}|{self.target.name}" for it in items]
        known, todo = split_cached(self.scores_cache, keys, masks, granularity, replace)
        plan = ContinuationPlan(self)
        slots = [
            plan.add_item(it, t, granularity, replace, self._encode_variants)
            if len(t) or it.full is None
            else None
            for it, t in zip(items, todo, strict=True)
        ]
        values = plan.run() if plan.contexts else []
        computed = []
        for it, slot in zip(items, slots, strict=True):
            k = self.n_outputs(it)
            if slot is None:
                computed.append(np.zeros((0, k)))
                continue
            ref, rows = slot
            if it.full is None:
                it.full = values[ref]
            computed.append(np.stack([values[r] for r in rows]) if rows else np.zeros((0, k)))
        return merge_cached(
            self.scores_cache, keys, masks, granularity, replace, known, todo, computed,
            [self.n_outputs(it) for it in items],
        )  # fmt: skip

    # ------------------------------------------------------------------- gradients, attention
    def _next_token_items(self, items: Sequence[GenerationItem]) -> list[Item]:
        """Each output as a next-token item: context = prompt + the tokens generated before it."""
        out = []
        for it in items:
            g, foil = it.generation, it.foil_ids
            for i in range(it.rows):
                enc = extend(it.prompt, g.token_ids[:i], g.tokens[:i])
                f = None if foil is None else foil[i]
                sub = Item(len(out), enc, torch.empty(0), g.token_ids[i], f, float("nan"))
                sub.key = self.engine.item_key(sub)
                out.append(sub)
        return out

    def _require_maps(self) -> None:
        if self.sequence_target and not getattr(self._active, "additive", False):
            raise UserError("a whole-sequence target needs a method whose maps add up over tokens")

    def gradients(
        self,
        items: Sequence[GenerationItem],
        n_rows: int,
        rows_fn: RowsFn,
        reduce_fn: ReduceFn,
        *,
        seed: int = 0,
    ) -> list[list[Mapping[str, Any]]]:
        """Per item, per generated token: the reduced gradient map over everything before it (for a
        whole-sequence target, one map: the sum of the tokens' maps)."""
        self._require_maps()
        subs = self._next_token_items(items)
        flat = self.engine.embedding_gradients(subs, n_rows, rows_fn, reduce_fn, seed=seed)
        out, at = [], 0
        for it in items:
            rows = list(flat[at : at + it.rows])
            at += it.rows
            out.append([summed(rows)] if self.sequence_target else rows)
        return out

    def attention_maps(
        self, items: Sequence[GenerationItem]
    ) -> list[tuple[torch.Tensor, list[int]]]:
        """One pass over prompt + continuation per item; output i is read at the position before
        generated token i (a causal model's row there equals a pass over that prefix alone)."""
        self._require_maps()
        subs = []
        for it in items:
            g, last = it.generation, it.rows - 1
            enc = extend(it.prompt, g.token_ids[:last], g.tokens[:last])
            subs.append(Item(len(subs), enc, torch.empty(0), 0, None, float("nan")))
        maps = self.engine.attentions(subs)
        return [
            (att, [len(it.prompt) - 1 + i for i in range(it.rows)])
            for att, it in zip(maps, items, strict=True)
        ]

    # ---------------------------------------------------------------------------- results
    def result(
        self,
        item: GenerationItem,
        method: Any,
        attribution: Attribution,
        granularity: str,
        seconds: float,
    ) -> GenerationAttribution:
        return build_attribution(self, item, method, attribution, granularity, seconds)


def summed(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of per-token reduce results (scores zero-padded to the longest)."""
    width = max(len(r["scores"]) for r in rows)
    scores = np.zeros(width)
    out: dict[str, Any] = {}
    for r in rows:
        v = np.asarray(r["scores"], dtype=np.float64)
        scores[: v.size] += v
        for k, x in r.items():
            if k != "scores" and x is not None:
                out[k] = out.get(k, 0.0) + float(x)
    out["scores"] = scores
    return out
