"""Tiny random models built from a config, with the built-in models' real tokenizers.

A 2-layer, 32-dimensional BERT sequence classifier (MiniLM's WordPiece tokenizer) and Llama causal
LM (SmolLM2's byte-level BPE tokenizer), seeded, so every build saves the same weights. The test
suite runs on them (word grouping is exercised on real vocabularies while every pass stays cheap),
and so do the benchmarks' smoke runs (``--tiny``). Their predictions mean nothing.

>>> sorted(TINY_LLAMA_SHAPE)[:2]
['hidden_size', 'intermediate_size']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from explainlm.models.sources import resolve_source

TINY_BERT_SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}
TINY_LLAMA_SHAPE = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
}


def build_tiny_bert(out: Path, tokenizer_dir: Path | None = None) -> Path:
    """Save a random 2-class BERT classifier (negative/positive; seed 0) into ``out``."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir or resolve_source("minilm-l6").path)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        **TINY_BERT_SHAPE,
        num_labels=2,
        initializer_range=0.2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    return _save_seeded(BertForSequenceClassification, cfg, tok, out)


def build_tiny_llama(out: Path, tokenizer_dir: Path | None = None, **shape: int) -> Path:
    """Save a random Llama causal LM (seed 0) into ``out``: :data:`TINY_LLAMA_SHAPE` with the
    LlamaConfig fields in ``shape`` overridden."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir or resolve_source("smollm2-135m").path)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        **{**TINY_LLAMA_SHAPE, **shape},
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    return _save_seeded(LlamaForCausalLM, cfg, tok, out)


def _save_seeded(model_class: Any, cfg: Any, tok: Any, out: Path) -> Path:
    """Build ``model_class(cfg)`` from seed 0 and save it with ``tok`` into ``out``."""
    torch.manual_seed(0)
    model = model_class(cfg)
    model.config.architectures = [model_class.__name__]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)
