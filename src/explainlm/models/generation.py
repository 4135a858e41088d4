"""The generator task: causal-LM continuation (greedy or seeded sampling) with per-token log-probs.

>>> from explainlm.models import load_model
>>> gen = load_model("smollm2-135m", task="generator")                      # doctest: +SKIP
>>> g = gen.generate(["The capital of France is"], max_new_tokens=3)[0]   # doctest: +SKIP
>>> g.text, g.logprobs                                                     # doctest: +SKIP
(' Paris.', [-0.41, -1.2, ...])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS, token_budget_batches
from explainlm.models.classifiers import PassWrapper, Prediction
from explainlm.models.wrapper import Encoding, ModelWrapper

MAX_NEW_TOKENS_LIMIT = 4096


@dataclass
class Generation:
    """A prompt's continuation: token ids, token strings and the model's log-prob of each token."""

    prompt: str
    text: str
    token_ids: list[int]
    tokens: list[str]
    logprobs: list[float]
    prompt_encoding: Encoding
    warnings: list[str] = field(default_factory=list)

    @property
    def sequence_logprob(self) -> float:
        return float(sum(self.logprobs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "text": self.text,
            "tokens": self.tokens,
            "token_ids": self.token_ids,
            "logprobs": self.logprobs,
            "sequence_logprob": self.sequence_logprob,
        }


class Generator:
    """Continue prompts with a causal LM and score given continuations (teacher forcing)."""

    task = "generator"

    def __init__(self, wrapper: ModelWrapper, *, chat: bool | None = None) -> None:
        if not wrapper.is_decoder:
            raise UserError(f"generation needs a causal LM; {wrapper.name} is a {wrapper.kind}")
        self.wrapper = wrapper
        self.chat = wrapper.chat if chat is None else chat

    @property
    def name(self) -> str:
        return self.wrapper.name

    def encode(self, prompts: Sequence[str], truncation: bool = True) -> list[Encoding]:
        return self.wrapper.encode(prompts, chat=self.chat, truncation=truncation)

    def decode_tokens(self, ids: list[int]) -> list[str]:
        tok = self.wrapper.tokenizer
        return [tok.decode([i]) for i in ids]

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = 0,
        truncation: bool = True,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> list[Generation]:
        """Greedy (default) or seeded-sampling continuations, with the model's log-prob per token.

        Log-probs are of the unmodified model distribution (before temperature/top-p), so they equal
        teacher-forced scores of the same tokens (:meth:`score`).
        """
        if not 1 <= max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise UserError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}")
        w = self.wrapper
        encodings = self.encode(prompts, truncation)
        eos = w.tokenizer.eos_token_id
        out: list[Generation | None] = [None] * len(encodings)
        lengths = [len(e) + max_new_tokens for e in encodings]
        for idx in token_budget_batches(lengths, max_batch_tokens):
            batch = w.collate([encodings[i] for i in idx])
            if seed is not None:
                torch.manual_seed(seed)
            res = w.model.generate(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=top_p if do_sample else None,
                top_k=None,
                pad_token_id=w.pad_token_id,
                eos_token_id=eos,
                output_logits=True,
                return_dict_in_generate=True,
            )
            new = res.sequences[:, batch.input_ids.shape[1] :]
            logits = torch.stack(res.logits, dim=1).float()
            logp = torch.log_softmax(logits, -1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                n = len(ids)
                if eos is not None and eos in ids:
                    n = ids.index(eos) + 1  # keep the end-of-sequence token, drop the padding after
                ids = ids[:n]
                text = w.tokenizer.decode(ids, skip_special_tokens=True)
                out[i] = Generation(
                    encodings[i].text,
                    text,
                    ids,
                    self.decode_tokens(ids),
                    [float(v) for v in logp[row, :n]],
                    encodings[i],
                    list(encodings[i].warnings),
                )
        return [g for g in out if g is not None]

    def continuation_ids(self, continuation: str | Sequence[int]) -> list[int]:
        """Token ids of a continuation given as text (tokenized without special tokens) or as ids."""
        if isinstance(continuation, str):
            ids = self.wrapper.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        else:
            ids = [int(i) for i in continuation]
        if not ids:
            raise UserError("the continuation to score is empty")
        return ids

    @torch.no_grad()
    def score(
        self,
        prompts: Sequence[str],
        continuations: Sequence[str | Sequence[int]],
        *,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> list[Generation]:
        """Teacher forcing: the model's log-prob of each token of a given continuation (text or ids).

        Runs :func:`continuation_logits`, the teacher-forcing loop the explanation engine uses too,
        batched under ``max_batch_tokens``.
        """
        if len(prompts) != len(continuations):
            raise UserError("give one continuation per prompt")
        w = self.wrapper
        encodings = self.encode(prompts)
        cont = [self.continuation_ids(c) for c in continuations]
        logprobs: list[list[float]] = [[] for _ in encodings]
        for i, logits in continuation_logits(w, encodings, cont, max_batch_tokens):
            lp = torch.log_softmax(logits.float(), -1)
            ids = torch.tensor(cont[i], device=lp.device).view(-1, 1)
            logprobs[i] = [float(v) for v in lp.gather(-1, ids).squeeze(-1)]
        return [
            Generation(
                e.text,
                w.tokenizer.decode(ids, skip_special_tokens=True),
                ids,
                self.decode_tokens(ids),
                lp,
                e,
                list(e.warnings),
            )
            for e, ids, lp in zip(encodings, cont, logprobs, strict=True)
        ]

    def predict(
        self, texts: Sequence[str], *, max_new_tokens: int = 20, **kw: Any
    ) -> list[Prediction]:
        """Generation as a prediction: the label is the continuation, its probability exp(Σ log p)."""
        gens = self.generate(texts, max_new_tokens=max_new_tokens, **kw)
        return [
            Prediction(
                g.prompt, g.text, {g.text: math.exp(g.sequence_logprob)}, g.logprobs, g.warnings
            )
            for g in gens
        ]

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.name, "chat": self.chat}


def continuation_logits(
    wrapper: ModelWrapper,
    contexts: Sequence[Encoding],
    continuations: Sequence[Sequence[int]],
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    *,
    wrap: PassWrapper | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Teacher forcing in passes under the token budget: ``(row, logits [m, vocab])`` per row.

    ``logits[k]`` predicts continuation token k after ``context + continuation[:k]``. One forward
    of ``context + continuation`` serves every position; rows are batched by length (left padding
    puts every continuation at the end, so only the last positions' logits are computed).
    ``wrap(rows, tokens)`` is a context manager around each pass (the engine counts passes with it).
    """
    lengths = [len(c) + len(k) for c, k in zip(contexts, continuations, strict=True)]
    for idx in token_budget_batches(lengths, max_batch_tokens):
        batch = wrapper.collate([contexts[i] for i in idx], extra=[continuations[i] for i in idx])
        keep = max(len(continuations[i]) for i in idx) + 1
        with wrap(len(idx), batch.input_ids.numel()) if wrap else nullcontext():
            logits = wrapper.forward(batch, logits_to_keep=keep).logits
        for b, i in enumerate(idx):
            m = len(continuations[i])
            yield i, logits[b, keep - m - 1 : keep - 1]
