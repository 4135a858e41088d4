"""Teacher-forced log-probs of continuations for causal LMs, with KV-cache reuse.

Part of :class:`~explainlm.engine.Engine` (a mixin, so one engine serves every method): generation
occlusion and surrogates ask for ``log p(continuation | context)`` of many ablated contexts, and
each ablation reuses the keys and values of its unablated reference up to its first change.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from explainlm.engine.prefix import ReusePlan, plan_reuse, shared_prefix_length
from explainlm.errors import UserError
from explainlm.models.batching import token_budget_batches
from explainlm.models.generation import continuation_logits
from explainlm.models.wrapper import Encoding

# per row: (continuation position, token id) pairs to read; position k reads the logits that
# predict continuation token k (after the context and continuation[:k])
Reads = Sequence[Sequence[tuple[int, int]]]

# tokens: without explicit references, rows that all share this long a prefix reuse it
MIN_SHARED_PREFIX = 64


class ContinuationScoring:
    """Continuation log-probs in shared passes (mixed into the engine; uses its wrapper and budget)."""

    wrapper: Any
    forward_wrapper: Any  # the wrapper of the model variant forward passes run on
    max_batch_tokens: int
    _pass: Callable[..., contextlib.AbstractContextManager[Any]]
    _stage: Callable[..., None]

    @torch.no_grad()
    def continuation_logprobs(
        self,
        contexts: Sequence[Encoding],
        continuations: Sequence[Sequence[int]],
        alternatives: Sequence[Sequence[int]] | None = None,
        *,
        references: Sequence[int] | None = None,
        min_shared_prefix: int = MIN_SHARED_PREFIX,
        reads: Reads | None = None,
        plan: ReusePlan | None = None,
    ) -> list[np.ndarray]:
        """log p of every continuation token after its context, many sequences per pass.

        One forward of ``context + continuation`` gives the log-probs of all continuation positions
        at once (teacher forcing); sequences are batched by length under the token budget. With
        ``alternatives`` (one id per position, e.g. a contrastive foil), each result is ``[2, m]``:
        the continuation's log-probs and the alternative ids' log-probs at the same positions
        (NaN past the alternative's end). With ``reads`` (per row, ``(position, id)`` pairs), each
        result is the log-prob of each pair's id at its position instead (a token dropped from the
        continuation is still scored where it would have come).

        ``references`` (decoders only) names, for every row, a row whose keys and values it may
        reuse (a reference names itself): an ablated prompt equals its unablated reference up to the
        first removed token, so only the rest is run (:meth:`_reusing_prefixes`). Without it, rows
        that all share a prefix of ``min_shared_prefix`` tokens or more reuse that prefix.
        Prefixes are reused where :meth:`reuse_pays` predicts it faster (``plan``: the reuse plan
        of these rows, which the caller has laid out and decided on already).
        """
        w = self.forward_wrapper
        if plan is not None and not all(len(c) for c in contexts):
            raise ValueError("a reuse plan needs non-empty contexts (they become a start token)")
        contexts = [c if len(c) else self._start_context(c) for c in contexts]
        if reads is not None and alternatives is not None:
            raise ValueError("give alternatives or reads, not both")
        if w.is_decoder and references is None:
            shared = shared_prefix_length([c.input_ids for c in contexts])
            if shared >= min_shared_prefix:
                references = [0] * len(contexts)
        lengths = [len(c) + len(k) for c, k in zip(contexts, continuations, strict=True)]
        tokens = sum(lengths)
        if plan is None and w.is_decoder and references is not None:
            plan = self.reuse_plan(contexts, continuations, references)
            if not self.reuse_pays(plan, lengths, self.max_batch_tokens):
                plan = None
        if plan is not None:  # the estimate counts what runs: suffixes
            tokens = plan.suffix_tokens()
        self._stage("scoring continuations", len(contexts), tokens)
        if plan is not None:
            return self._reusing_prefixes(plan, contexts, continuations, alternatives, reads)
        out: list[np.ndarray] = [np.zeros(0)] * len(contexts)
        for i, logits in continuation_logits(
            w, contexts, continuations, self.max_batch_tokens, wrap=self._pass
        ):
            out[i] = _extract(logits, continuations[i], _row(alternatives, i), _row(reads, i))
        return out

    def _start_context(self, empty: Encoding) -> Encoding:
        """An empty context (every word of a one-word prompt removed) as the start-of-text token.

        A causal LM needs one position before the first continuation token; the BOS token (EOS
        when there is none, as GPT-style models separate documents) is what it saw there in training.
        """
        tok = self.wrapper.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if start is None:
            raise UserError(
                "cannot score a continuation after an empty context: the tokenizer has no BOS or "
                "EOS token"
            )
        return replace(
            empty,
            input_ids=[int(start)],
            tokens=[str(tok.convert_ids_to_tokens(int(start)))],
            offsets=[None],
            special=[True],
            word_ids=[-1],
        )

    def reuse_plan(
        self,
        contexts: Sequence[Encoding],
        continuations: Sequence[Sequence[int]],
        references: Sequence[int],
    ) -> ReusePlan:
        """The passes :meth:`_reusing_prefixes` runs (:func:`~explainlm.engine.prefix.plan_reuse`)."""
        return plan_reuse(contexts, continuations, references, self.max_batch_tokens)

    def reuse_pays(self, plan: ReusePlan, full_lengths: Sequence[int], budget: int) -> bool:
        """Whether reusing prefixes (``plan``) is predicted faster than full forwards of rows of
        ``full_lengths`` in passes of ``budget`` tokens.

        Each plan costs its padded tokens plus a fixed cost per pass: the per-pass overhead the
        precision plan measured (``pass_overhead_tokens``, in tokens of the forward precision; a
        bf16 pass on CPU costs as much as a few hundred tokens however small it is). Without a
        measurement prefixes are reused (they never run more tokens).
        """
        overhead = getattr(getattr(self, "precision", None), "pass_overhead_tokens", None)
        if overhead is None:
            return True
        full = sum(
            len(idx) * max(full_lengths[i] for i in idx) + overhead
            for idx in token_budget_batches(full_lengths, budget)
        )
        return plan.cost(overhead) <= full

    def _reusing_prefixes(
        self,
        plan: ReusePlan,
        contexts: Sequence[Encoding],
        continuations: Sequence[Sequence[int]],
        alternatives: Sequence[Sequence[int]] | None,
        reads: Reads | None = None,
    ) -> list[np.ndarray]:
        """:meth:`continuation_logprobs` with every row's prefix taken from its reference's KV cache
        (:meth:`reuse_plan`): a row's batch cache holds its reference's first ``c_r`` positions,
        left-padded to the batch's largest ``c_r``, and only its suffix runs (right-padded,
        position ids from ``c_r``)."""
        w = self.forward_wrapper
        seqs, starts, references = plan.seqs, plan.starts, plan.references
        out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
        for full, batches in plan.waves:
            cache = self._reference_pass(
                full, contexts, continuations, seqs, (alternatives, reads), out
            )
            for idx in batches:
                cut = [starts[i] for i in idx]
                width = max(len(seqs[i]) - c for i, c in zip(idx, cut, strict=True))
                past_len = max(cut)
                ids = torch.full((len(idx), width), w.pad_token_id, dtype=torch.long)
                mask = torch.zeros((len(idx), past_len + width), dtype=torch.long)
                for b, (i, c) in enumerate(zip(idx, cut, strict=True)):
                    suffix = seqs[i][c:]
                    ids[b, : len(suffix)] = torch.tensor(suffix)
                    mask[b, past_len - c : past_len + len(suffix)] = 1
                pos = torch.tensor(cut).unsqueeze(1) + torch.arange(width)
                firsts = [len(contexts[i]) - 1 - c for i, c in zip(idx, cut, strict=True)]
                past = None
                if past_len:
                    past = _gather_cache(cache, [references[i] for i in idx], cut, past_len)
                spans = [(f, len(continuations[i])) for f, i in zip(firsts, idx, strict=True)]
                # cost model of the estimates: suffix tokens plus a quarter of the cached prefix
                cost = sum(len(seqs[i]) - c for i, c in zip(idx, cut, strict=True)) + sum(cut) / 4
                logits, _ = self._decode(ids, mask, spans, position_ids=pos, past=past, cost=cost)
                for b, i in enumerate(idx):
                    out[i] = _extract(
                        logits[b], continuations[i], _row(alternatives, i), _row(reads, i)
                    )
        return out

    def _reference_pass(
        self,
        batches: Sequence[Sequence[int]],
        contexts: Sequence[Encoding],
        continuations: Sequence[Sequence[int]],
        seqs: Sequence[Sequence[int]],
        extra: tuple[Sequence[Sequence[int]] | None, Reads | None],
        out: list[np.ndarray],
    ) -> dict[int, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Run the reference rows in full (right-padded); fill their results; return their caches."""
        w = self.forward_wrapper
        alternatives, reads = extra
        caches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for rows in batches:
            width = max(len(seqs[r]) for r in rows)
            ids = torch.full((len(rows), width), w.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, r in enumerate(rows):
                ids[b, : len(seqs[r])] = torch.tensor(seqs[r])
                mask[b, : len(seqs[r])] = 1
            spans = [(len(contexts[r]) - 1, len(continuations[r])) for r in rows]
            logits, past = self._decode(ids, mask, spans)
            layers = _cache_tensors(past)
            for b, r in enumerate(rows):
                caches[r] = [(k[b : b + 1], v[b : b + 1]) for k, v in layers]
                out[r] = _extract(
                    logits[b], continuations[r], _row(alternatives, r), _row(reads, r)
                )
        return caches

    def _decode(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        spans: Sequence[tuple[int, int]],
        *,
        position_ids: torch.Tensor | None = None,
        past: Any = None,
        cost: float | None = None,
    ) -> tuple[list[torch.Tensor], Any]:
        """One decoder pass; row b's logits at positions ``spans[b] = (start, length)`` only.

        The output head runs on the selected hidden states alone (on CPU it otherwise costs about
        a quarter of the pass: 49k-way logits at every position). Models whose head does more than
        one projection (logit soft-capping or scaling) get the full logits instead.
        """
        w = self.forward_wrapper
        model = w.model
        kw: dict[str, Any] = {
            "input_ids": ids.to(w.device),
            "attention_mask": mask.to(w.device),
            _cache_argument(model): past,
            "use_cache": True,
        }
        if position_ids is not None:
            kw["position_ids"] = position_ids.to(w.device)
        cfg = model.config
        plain_head = not any(
            getattr(cfg, a, None) for a in ("final_logit_softcapping", "logit_scale")
        )
        head = model.get_output_embeddings()
        with self._pass(len(ids), ids.numel() if cost is None else cost):
            if plain_head and head is not None and model.base_model is not model:
                res = model.base_model(**kw)
                h = res.last_hidden_state
                rows = [b for b, (_, m) in enumerate(spans) for _ in range(m)]
                cols = [s + k for s, m in spans for k in range(m)]
                flat = head(h[rows, cols])
                logits, at = [], 0
                for _, m in spans:
                    logits.append(flat[at : at + m])
                    at += m
            else:
                res = model(**kw)
                logits = [res.logits[b, s : s + m] for b, (s, m) in enumerate(spans)]
        return logits, _returned_cache(res)


def _cache_argument(model: Any) -> str:
    """The keyword a model's forward takes its KV cache under (``cache`` in transformers ≥ 5.2x,
    ``past_key_values`` before), so no deprecation warning is triggered."""
    base = getattr(model, "base_model", model)
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _returned_cache(res: Any) -> Any:
    cache = getattr(res, "cache", None)
    return cache if cache is not None else getattr(res, "past_key_values", None)


def _row(values: Sequence[Any] | None, i: int) -> Any:
    return None if values is None else values[i]


def _cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (keys, values) ``[B, heads, T, d]`` of a transformers KV cache."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [(k, v) for k, v in cache]  # legacy tuple-of-tuples caches


def _gather_cache(
    caches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]],
    owners: Sequence[int],
    lengths: Sequence[int],
    width: int,
) -> Any:
    """A batch cache whose row b holds the first ``lengths[b]`` positions of ``caches[owners[b]]``,
    left-padded to ``width`` (the attention mask hides the padding, as in batched generation)."""
    from transformers import DynamicCache

    n_layers = len(next(iter(caches.values())))
    data = []
    for layer in range(n_layers):
        pair = []
        for kind in (0, 1):
            ref = caches[owners[0]][layer][kind]
            out = ref.new_zeros((len(owners), ref.shape[1], width, ref.shape[3]))
            for b, (o, n) in enumerate(zip(owners, lengths, strict=True)):
                if n:
                    out[b, :, width - n :] = caches[o][layer][kind][0, :, :n]
            pair.append(out)
        data.append((pair[0], pair[1]))
    return DynamicCache(data)


def _extract(
    logits: torch.Tensor,
    ids: Sequence[int],
    alternatives: Sequence[int] | None,
    reads: Sequence[tuple[int, int]] | None,
) -> np.ndarray:
    """The log-probs a row asked for: its continuation's (and alternatives'), or its reads."""
    if reads is None:
        return _gather(logits, ids, alternatives)
    rows = torch.log_softmax(logits.float(), -1).cpu()
    if not reads:
        return np.zeros(0)
    pos = torch.tensor([p for p, _ in reads], dtype=torch.long)
    tid = torch.tensor([t for _, t in reads], dtype=torch.long)
    return rows[pos, tid].numpy().astype(np.float64)


def _gather(
    logits: torch.Tensor, ids: Sequence[int], alternatives: Sequence[int] | None
) -> np.ndarray:
    """log p of ``ids`` at successive positions (and of ``alternatives`` there: ``[2, m]``)."""
    rows = torch.log_softmax(logits.float(), -1).cpu()
    m = len(ids)
    lp = rows.gather(-1, torch.tensor(list(ids), dtype=torch.long).view(-1, 1)).squeeze(-1)
    lp = lp.numpy().astype(np.float64)
    if alternatives is None:
        return lp
    alt = np.full(m, np.nan)
    k = min(m, len(alternatives))
    if k:
        aids = torch.tensor(list(alternatives[:k]), dtype=torch.long)
        alt[:k] = rows[:k].gather(-1, aids.view(-1, 1)).squeeze(-1).numpy()
    return np.stack([lp, alt])
