"""How likely a language model finds a text: the scoring behind every LM social-bias benchmark.

* **Causal LMs**: the sequence log-probability ``Σ_i log p(w_i | start, w_<i)``, teacher-forced
  through :meth:`explainlm.engine.Engine.continuation_logprobs` (batched under the token budget).
  The alternatives of one item (a CrowS-Pairs pair, BBQ's three answers) usually share a long
  prefix: the first alternative runs in full and every other one reuses its KV cache up to their
  first differing token, so only the differing tail is computed again.
* **Masked LMs**: the pseudo-log-likelihood ``Σ_i log p(w_i | w_\\i)`` (Salazar et al. 2020), every
  token masked in turn; the masked copies of all texts are packed into shared passes by the engine
  (:meth:`~explainlm.engine.Engine.score_encodings`) under the same token budget.

The text starts after a start token the model saw between documents in training (a BOS the
tokenizer adds itself, else ``<|endoftext|>``, else EOS, else BOS).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.engine.continuation import shared_prefix_length
from explainlm.errors import UserError
from explainlm.models import Classifier, ModelWrapper
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.models.wrapper import Batch, Encoding
from explainlm.targets import ClassTarget

MASKED_CHUNK = 512  # masked copies per engine call (each keeps a vocabulary-sized score row)


@dataclass
class TextScore:
    """A text's log-likelihood, and that of its tail after the part shared with its alternatives."""

    logprob: float
    tokens: int
    tail_logprob: float
    tail_tokens: int

    @property
    def tail_mean(self) -> float:
        return self.tail_logprob / max(self.tail_tokens, 1)


def load_language_model(name: str, device: str | None = None) -> ModelWrapper:
    """A causal LM (built-in name, directory or hub id) or a masked LM (a ``*ForMaskedLM`` directory)."""
    from explainlm.models.sources import resolve_source

    src = resolve_source(name)
    if src.kind == "causal_lm":
        return ModelWrapper.from_source(src, device=device)
    config_file = os.path.join(str(src.path), "config.json")
    archs: list[str] = []
    if os.path.isfile(config_file):
        import json

        with open(config_file, encoding="utf-8") as fh:
            archs = list(json.load(fh).get("architectures") or [])
    if not any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in archs):
        raise UserError(
            f"{name} is neither a causal LM nor a masked LM (architectures: "
            f"{', '.join(archs) or 'unknown'}); LM bias needs one of them"
        )
    return masked_lm_wrapper(str(src.path), name=src.name, device=device)


def masked_lm_wrapper(path: str, *, name: str, device: str | None = None) -> ModelWrapper:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32)
    return ModelWrapper(model, tok, name=name, kind="encoder", device=device)


class _MaskedTokenScorer(Classifier):
    """Class scores = log p(token) at each row's single mask position, over the vocabulary."""

    task = "masked_token"

    def __init__(self, wrapper: ModelWrapper) -> None:
        size = int(wrapper.model.get_output_embeddings().weight.shape[0])
        super().__init__(wrapper, [str(i) for i in range(size)])
        self.mask_id = wrapper.tokenizer.mask_token_id
        if self.mask_id is None:
            raise UserError(f"{wrapper.name} has no mask token: it is not a masked LM")

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        out = self.wrapper.forward(batch, inputs_embeds=inputs_embeds)
        pos = (batch.input_ids == self.mask_id).long().argmax(-1)
        rows = out.logits[torch.arange(pos.numel()), pos]
        return torch.log_softmax(rows.float(), -1)


class TextScorer:
    """Sequence log-probabilities (causal LM) or pseudo-log-likelihoods (masked LM) of texts."""

    def __init__(
        self, wrapper: ModelWrapper, *, max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    ) -> None:
        self.wrapper = wrapper
        self.kind = "causal" if wrapper.is_decoder else "masked"
        self.max_batch_tokens = int(max_batch_tokens)
        if self.kind == "causal":
            from explainlm.generation.scorer import NextTokenScorer

            self.engine = Engine(NextTokenScorer(wrapper), max_batch_tokens=max_batch_tokens)
            self.start = [start_token(wrapper.tokenizer)]
        else:
            self.engine = Engine(
                _MaskedTokenScorer(wrapper), ClassTarget("logit"), max_batch_tokens=max_batch_tokens
            )
            self.start = []

    @property
    def passes(self) -> int:
        return self.engine.passes

    def describe(self) -> dict[str, Any]:
        method = "sequence log-probability" if self.kind == "causal" else "pseudo-log-likelihood"
        return {"model": self.wrapper.name, "kind": self.kind, "score": method}

    def tokenize(self, text: str) -> list[int]:
        tok = self.wrapper.tokenizer
        if self.kind == "masked":
            return list(tok(text)["input_ids"])
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        return ids[: self.wrapper.max_length - 1]

    def score_groups(self, groups: Sequence[Sequence[str]]) -> list[list[TextScore]]:
        """Score every text of every group; the tail is what follows the group's shared prefix."""
        ids = [[self.tokenize(t) for t in g] for g in groups]
        for g, texts in zip(ids, groups, strict=True):
            for i, t in zip(g, texts, strict=True):
                if len(i) == 0:
                    raise UserError(f"text {t!r} has no tokens")
        if self.kind == "causal":
            per_token = self._causal(ids)
        else:
            per_token = self._masked(ids)
        out = []
        for g, lps in zip(ids, per_token, strict=True):
            shared = _group_prefix(g) if len(g) > 1 else 0
            out.append(
                [
                    TextScore(float(lp.sum()), len(lp), float(lp[shared:].sum()), len(lp) - shared)
                    for lp in lps
                ]
            )
        return out

    # --------------------------------------------------------------------------- causal
    def _causal(self, ids: list[list[list[int]]]) -> list[list[np.ndarray]]:
        contexts: list[Encoding] = []
        continuations: list[list[int]] = []
        references: list[int] = []
        prefix: list[int] = []  # tokens of each row taken from its reference's log-probs
        for group in ids:
            ref = len(contexts)
            for k, seq in enumerate(group):
                p = 0 if k == 0 else min(shared_prefix_length([group[0], seq]), len(seq) - 1)
                p = max(p, 0)
                contexts.append(_context(self.start + seq[:p]))
                continuations.append(seq[p:])
                references.append(ref)
                prefix.append(p)
        lps = self.engine.continuation_logprobs(contexts, continuations, references=references)
        out: list[list[np.ndarray]] = []
        row = 0
        for group in ids:
            first = lps[row]
            res = []
            for _k in range(len(group)):
                p = prefix[row]
                res.append(np.concatenate([first[:p], lps[row]]))
                row += 1
            out.append(res)
        return out

    # --------------------------------------------------------------------------- masked
    def _masked(self, ids: list[list[list[int]]]) -> list[list[np.ndarray]]:
        tok = self.wrapper.tokenizer
        special = set(tok.all_special_ids)
        jobs: list[tuple[int, int, int, int]] = []  # group, text, position, token
        for gi, group in enumerate(ids):
            for ti, seq in enumerate(group):
                jobs += [(gi, ti, j, t) for j, t in enumerate(seq) if t not in special]
        values = np.zeros(len(jobs))
        for s in range(0, len(jobs), MASKED_CHUNK):
            part = jobs[s : s + MASKED_CHUNK]
            encs = []
            items = []
            for n, (gi, ti, j, t) in enumerate(part):
                masked = list(ids[gi][ti])
                masked[j] = int(tok.mask_token_id)
                encs.append(_context(masked))
                items.append(Item(n, encs[-1], torch.zeros(0), int(t), None, 0.0))
            scored = self.engine.score_encodings(items, [[e] for e in encs])
            values[s : s + len(part)] = [float(v[0]) for v in scored]
        out: list[list[list[float]]] = [[[] for _ in g] for g in ids]
        for (gi, ti, _j, _t), v in zip(jobs, values, strict=True):
            out[gi][ti].append(v)
        return [[np.asarray(x) for x in g] for g in out]


def _group_prefix(group: Sequence[Sequence[int]]) -> int:
    """Tokens all alternatives share at the start (masked LMs: their log-probs still differ)."""
    n = min(len(x) for x in group)
    k = 0
    while k < n and all(x[k] == group[0][k] for x in group):
        k += 1
    return min(k, n - 1)


def _context(ids: Sequence[int]) -> Encoding:
    n = len(ids)
    return Encoding("", "", list(ids), [""] * n, [None] * n, [True] * n, [-1] * n, [])


def start_token(tokenizer: Any) -> int:
    """The token a causal LM saw before a document in training (see the module docstring)."""
    probe = tokenizer("a")["input_ids"]
    if tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id:
        return int(tokenizer.bos_token_id)
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for t in (tokenizer.eos_token_id, tokenizer.bos_token_id):
        if t is not None:
            return int(t)
    raise UserError("the tokenizer has no BOS, EOS or <|endoftext|> token to start a text with")
