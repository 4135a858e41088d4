"""Replacement words for a position in a text: embedding neighbours and LLM infilling.

* :class:`EmbeddingNeighbours` — the nearest whole words to a word by cosine similarity of a model's
  *input* token embeddings (MiniLM's WordPiece or SmolLM2's byte-level BPE vocabulary). Distributional
  neighbours include antonyms (*good* ↔ *bad*): welcome for counterfactuals, a known weakness for
  meaning-preserving attacks (counter-fitted embeddings, which fix it, are a download).
* :class:`LLMInfill` — in-context infilling with the built-in LLM: the LLM proposes next words after
  ``prompt + left context`` (the prompt names the label to move towards, as MiCE conditions its
  editor on the label), and the proposals are re-ranked by the log-probability of the whole rest of
  the sentence (``candidate + right context``), so the right context counts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from explainlm.models import ModelWrapper
from explainlm.whatif.language_model import LanguageModel, _word_tokens
from explainlm.whatif.text import WordText, match_case

SOURCES = ("llm", "embedding", "delete")
DEFAULT_INFILL_PROMPT = "Here is a {label} text:\n"


@dataclass(frozen=True)
class Slot:
    """Where candidates are wanted: word ``index`` of ``text``, moving towards ``label``."""

    text: WordText
    index: int
    label: str = ""


class EmbeddingNeighbours:
    """Whole-word vocabulary entries and their unit-length input embeddings, for cosine look-ups.

    ``ids[word]`` is the token id of the word as it appears after a space (``Ġword`` in byte-level
    BPE, ``word`` in WordPiece); ``bare_ids[word]`` the id without the space (BPE only).
    """

    def __init__(self, wrapper: ModelWrapper) -> None:
        self.name = wrapper.name
        ids, words, spaced = _word_tokens(wrapper.tokenizer)
        wordpiece = not spaced.any()  # WordPiece vocabularies have no leading-space tokens
        self.ids: dict[str, int] = {}
        self.bare_ids: dict[str, int] = {}
        for i, w, sp in zip(ids.tolist(), words, spaced.tolist(), strict=True):
            if sp or wordpiece:
                self.ids.setdefault(w, i)
            if not sp:
                self.bare_ids.setdefault(w, i)
        self.words = list(self.ids)
        self.row = {w: r for r, w in enumerate(self.words)}
        emb = wrapper.embedding_layer.weight.detach().float().cpu()
        self.embeddings = emb  # full table (HotFlip needs every id)
        table = emb[torch.tensor([self.ids[w] for w in self.words])]
        self.unit = torch.nn.functional.normalize(table, dim=-1)

    @classmethod
    def load(cls, name: str = "minilm-l6", *, device: str | None = None) -> EmbeddingNeighbours:
        return cls(ModelWrapper.load(name, device="cpu" if device is None else device))

    def lookup(self, word: str) -> str | None:
        """The vocabulary entry for ``word`` (exact, else lower-case), or None."""
        if word in self.row:
            return word
        return word.lower() if word.lower() in self.row else None

    def neighbours(
        self, words: Sequence[str], k: int, *, min_cosine: float = 0.0
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest other words to each word (``[]`` for words not in the vocabulary)."""
        keys = [self.lookup(w) for w in words]
        rows = [self.row[k_] for k_ in keys if k_ is not None]
        out: list[list[tuple[str, float]]] = [[] for _ in words]
        if not rows:
            return out
        sims = self.unit[torch.tensor(rows)] @ self.unit.T
        top = torch.topk(sims, min(k + 8, sims.shape[1]), dim=-1)
        r = 0
        for i, key in enumerate(keys):
            if key is None:
                continue
            for v, j in zip(top.values[r].tolist(), top.indices[r].tolist(), strict=True):
                w = self.words[j]
                if w.lower() == key.lower() or v < min_cosine:
                    continue
                out[i].append((w, float(v)))
                if len(out[i]) == k:
                    break
            r += 1
        return out

    def candidates(self, slots: Sequence[Slot], k: int) -> list[list[str]]:
        words = [s.text.words[s.index] for s in slots]
        found = self.neighbours(words, k)
        return [[match_case(w, o) for w, _ in f] for f, o in zip(found, words, strict=True)]


class LLMInfill:
    """Label-conditioned infilling with a causal LM (propose from the left, re-rank on the right)."""

    def __init__(
        self,
        lm: LanguageModel,
        *,
        prompt: str = DEFAULT_INFILL_PROMPT,
        n_proposals: int = 24,
        rerank: bool = True,
    ) -> None:
        self.lm = lm
        self.prompt = prompt
        self.n_proposals = int(n_proposals)
        self.rerank = rerank

    def context(self, slot: Slot) -> tuple[str, str]:
        """(prompt + left context, the rest of the sentence from the slot on without the word)."""
        wt = slot.text
        s, e = wt.spans[slot.index]
        head = self.prompt.format(label=slot.label) if self.prompt else ""
        return head + wt.text[:s].rstrip(" "), wt.text[e:]

    def candidates(self, slots: Sequence[Slot], k: int) -> list[list[str]]:
        """Up to ``k`` replacement words per slot, best first (the original word excluded)."""
        contexts = [self.context(s)[0] for s in slots]
        proposals = self.lm.next_words(contexts, self.n_proposals)
        out: list[list[str]] = []
        rows: list[tuple[int, str, str, str]] = []  # (slot, word, context, continuation)
        for i, (slot, props) in enumerate(zip(slots, proposals, strict=True)):
            original = slot.text.words[slot.index]
            words = [match_case(w, original) for w, _ in props if w.lower() != original.lower()]
            out.append(words)
            if self.rerank:
                ctx, right = self.context(slot)
                space = " " if ctx and not ctx.endswith("\n") else ""
                rows += [(i, w, ctx, space + w + right) for w in words]
        if self.rerank and rows:
            lps = self.lm.continuation_logprobs([r[2] for r in rows], [r[3] for r in rows])
            score = {(r[0], r[1]): float(np.sum(lp)) for r, lp in zip(rows, lps, strict=True)}
            for i, words in enumerate(out):
                words.sort(key=lambda w, i=i: -score[(i, w)])
        return [words[:k] for words in out]
