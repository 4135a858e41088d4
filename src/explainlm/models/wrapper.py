"""One wrapper around any Hugging Face encoder or decoder that hides architecture differences.

It tokenizes with character offsets, maps sub-word tokens onto word units, flags special and
template tokens, applies prompt and chat templates, pads batches the right way for the architecture
(left padding and explicit position ids for decoders), and runs forwards from token ids or from
input embeddings, which is what gradient-based explanations need.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("smollm2-135m")                       # doctest: +SKIP
>>> enc = w.encode(["A wonderful film"], template="Review: {text}\\nSentiment:")  # doctest: +SKIP
>>> enc[0].words                                                # doctest: +SKIP
['A', 'wonderful', 'film']
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from explainlm.errors import UserError
from explainlm.models.sources import ModelKind, ModelSource, resolve_source
from explainlm.models.words import assign_tokens_to_words, split_words

log = logging.getLogger(__name__)

TEXT_SLOT = "{text}"
DEFAULT_MAX_LENGTH = 2048


@dataclass
class Encoding:
    """One text as the model sees it.

    ``text`` is the user's text (what gets explained); ``sequence`` is the full string fed to the
    tokenizer (``text`` inside the template and chat markup). ``offsets`` are spans in ``text``
    (``None`` for tokens outside it: special and template tokens, flagged in ``special``).
    """

    text: str
    sequence: str
    input_ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int] | None]
    special: list[bool]
    word_ids: list[int]
    word_spans: list[tuple[int, int]]
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.word_spans]

    @property
    def text_token_positions(self) -> list[int]:
        """Positions of tokens that belong to the user's text."""
        return [i for i, sp in enumerate(self.special) if not sp]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Batch:
    """Padded tensors for a list of encodings."""

    encodings: list[Encoding]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    padding_side: str

    def positions(self, i: int) -> list[int]:
        """Column index of each token of encoding ``i`` in the padded batch."""
        n = len(self.encodings[i])
        offset = self.input_ids.shape[1] - n if self.padding_side == "left" else 0
        return list(range(offset, offset + n))

    def __len__(self) -> int:
        return len(self.encodings)


@contextmanager
def eager_attention(model: nn.Module, needed: bool = True) -> Iterator[None]:
    """Temporarily switch a model to eager attention (so attention weights exist); restore after."""
    current = getattr(model.config, "_attn_implementation", None)
    if not needed or current in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ModelWrapper:
    """A Hugging Face model and tokenizer behind one interface for every architecture."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name: str = "model",
        kind: ModelKind | None = None,
        chat: bool = False,
        meta: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.meta = meta or {}
        cfg = model.config
        if kind is None:
            archs = getattr(cfg, "architectures", None) or [type(model).__name__]
            if any(a.endswith("ForSequenceClassification") for a in archs):
                kind = "sequence_classifier"
            elif (
                getattr(cfg, "is_decoder", False)
                or hasattr(model, "generate")
                and "CausalLM" in (type(model).__name__)
            ):
                kind = "causal_lm"
            else:
                kind = "encoder"
        self.kind: ModelKind = kind
        self.chat = chat and getattr(tokenizer, "chat_template", None) is not None
        self.device = resolve_device(device)
        self.model.to(self.device)
        limit = getattr(cfg, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH
        tok_limit = getattr(tokenizer, "model_max_length", None)
        if tok_limit and tok_limit < 10**6:
            limit = min(limit, tok_limit)
        self.max_length = int(max_length or limit)
        self.padding_side = "left" if self.is_decoder else "right"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        self.pad_token_id: int = int(tokenizer.pad_token_id)

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        name: str,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        kind: ModelKind | None = None,
    ) -> ModelWrapper:
        """Load a built-in name, a local Hugging Face directory, or a hub id."""
        return cls.from_source(resolve_source(name), device=device, dtype=dtype, kind=kind)

    @classmethod
    def from_source(
        cls,
        src: ModelSource,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        kind: ModelKind | None = None,
    ) -> ModelWrapper:
        from transformers import (
            AutoModel,
            AutoModelForCausalLM,
            AutoModelForSequenceClassification,
            AutoTokenizer,
        )

        kind = kind or src.kind
        auto = {
            "causal_lm": AutoModelForCausalLM,
            "sequence_classifier": AutoModelForSequenceClassification,
            "encoder": AutoModel,
        }[kind]
        from transformers.utils import logging as hf_logging

        torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or torch.float32)
        hf_logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(src.path)
            model = auto.from_pretrained(src.path, dtype=torch_dtype)
        return cls(
            model, tokenizer, name=src.name, kind=kind, chat=src.chat, meta=src.meta, device=device
        )

    # ------------------------------------------------------------------------- properties
    @property
    def is_decoder(self) -> bool:
        return self.kind == "causal_lm"

    @property
    def embedding_layer(self) -> nn.Embedding:
        """The input-embedding layer (token embeddings only)."""
        return self.model.get_input_embeddings()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings of ``input_ids`` (what ``inputs_embeds`` replaces)."""
        return self.embedding_layer(input_ids.to(self.device))

    @property
    def special_token_ids(self) -> set[int]:
        return set(self.tokenizer.all_special_ids)

    # ---------------------------------------------------------------------------- encoding
    def render(
        self, text: str, template: str | None = None, chat: bool | None = None
    ) -> tuple[str, int]:
        """The full sequence string for ``text`` and the character index where ``text`` starts."""
        template = template or TEXT_SLOT
        if template.count(TEXT_SLOT) != 1:
            raise UserError(f"a template must contain {TEXT_SLOT} exactly once: {template!r}")
        prefix, suffix = template.split(TEXT_SLOT)
        content = prefix + text + suffix
        start = len(prefix)
        use_chat = self.chat if chat is None else chat
        if use_chat:
            if getattr(self.tokenizer, "chat_template", None) is None:
                raise UserError(f"model {self.name} has no chat template")
            marker = "\x00EXPLAINLM\x00"
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
            )
            if rendered.count(marker) != 1:
                raise UserError("the chat template does not place the user message exactly once")
            before, after = rendered.split(marker)
            return before + content + after, len(before) + start
        return content, start

    def _encode_one(
        self,
        text: str,
        template: str | None,
        chat: bool | None,
        add_special: bool,
        truncation: bool,
    ) -> Encoding:
        sequence, start = self.render(text, template, chat)
        end = start + len(text)
        enc = self.tokenizer(sequence, return_offsets_mapping=True, add_special_tokens=add_special)
        ids: list[int] = enc["input_ids"]
        special_ids = self.special_token_ids
        offsets: list[tuple[int, int] | None] = []
        for tid, (s, e) in zip(ids, enc["offset_mapping"], strict=True):
            inside = e > s and s < end and e > start and tid not in special_ids
            offsets.append((max(s, start) - start, min(e, end) - start) if inside else None)
        special = [o is None for o in offsets]
        notes: list[str] = []
        truncated = False
        if len(ids) > self.max_length:
            if not truncation:
                raise UserError(
                    f"text is {len(ids)} tokens long, over the model's limit of {self.max_length} "
                    "(drop --no-truncate, or pass truncation=True, to cut it)"
                )
            excess = len(ids) - self.max_length
            text_pos = [i for i, o in enumerate(offsets) if o is not None]
            keep = len(text_pos) - excess
            if keep <= 0:
                raise UserError(f"the template alone is longer than the limit of {self.max_length}")
            cut = offsets[text_pos[keep - 1]][1]  # type: ignore[index]
            shorter = self._encode_one(text[:cut].rstrip(), template, chat, add_special, True)
            shorter.truncated = True
            shorter.warnings.append(
                f"truncated from {len(ids)} to {len(shorter)} tokens (model limit {self.max_length})"
            )
            return shorter
        tokens = [
            sequence[s:e] if e > s else t
            for (s, e), t in zip(
                enc["offset_mapping"], self.tokenizer.convert_ids_to_tokens(ids), strict=True
            )
        ]
        word_spans = split_words(text)
        word_ids = assign_tokens_to_words(text, offsets, word_spans)
        return Encoding(
            text, sequence, ids, tokens, offsets, special, word_ids, word_spans, truncated, notes
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        template: str | None = None,
        chat: bool | None = None,
        add_special_tokens: bool = True,
        truncation: bool = True,
        allow_empty: bool = False,
    ) -> list[Encoding]:
        """Tokenize texts (inside ``template`` and, for chat models, the chat markup).

        Empty texts raise :class:`UserError` (unless ``allow_empty``, which perturbation methods use
        for "every word removed"); texts over the model's limit are truncated with a warning kept on
        the encoding, or raise when ``truncation`` is False.
        """
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str) or (not t.strip() and not allow_empty):
                raise UserError(f"text {i + 1} is empty: nothing to predict or explain")
            e = self._encode_one(t, template, chat, add_special_tokens, truncation)
            for w in e.warnings:
                log.warning("text %d: %s", i + 1, w)
            out.append(e)
        return out

    def collate(
        self, encodings: Sequence[Encoding], extra: Sequence[Sequence[int]] | None = None
    ) -> Batch:
        """Pad encodings into a batch (left for decoders, right for encoders).

        ``extra`` appends token ids after each encoding (e.g. verbalizer tokens) before padding.
        """
        seqs = [
            list(e.input_ids) + (list(extra[i]) if extra else []) for i, e in enumerate(encodings)
        ]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if self.padding_side == "left":
                ids[i, width - len(s) :] = torch.tensor(s)
                mask[i, width - len(s) :] = 1
            else:
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return Batch(
            list(encodings),
            ids.to(self.device),
            mask.to(self.device),
            pos.to(self.device),
            self.padding_side,
        )

    # ----------------------------------------------------------------------------- forward
    def forward(
        self,
        batch: Batch | None = None,
        *,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the model on a batch, on ids, or on input embeddings; returns the HF output object."""
        if batch is not None:
            attention_mask = batch.attention_mask if attention_mask is None else attention_mask
            position_ids = batch.position_ids if position_ids is None else position_ids
            if inputs_embeds is None and input_ids is None:
                input_ids = batch.input_ids
        if attention_mask is None:
            ref = input_ids if input_ids is not None else inputs_embeds
            attention_mask = torch.ones(ref.shape[:2], dtype=torch.long, device=self.device)
        args: dict[str, Any] = {"attention_mask": attention_mask, **kwargs}
        if inputs_embeds is not None:
            args["inputs_embeds"] = inputs_embeds
        else:
            args["input_ids"] = input_ids
        if self.is_decoder:
            if position_ids is None:
                position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            args["position_ids"] = position_ids
        return self.model(**args)

    def __repr__(self) -> str:
        return f"ModelWrapper(name={self.name!r}, kind={self.kind!r}, device={self.device})"
