"""The test suite's tiny random models (real tokenizers), for the benchmarks' ``--tiny`` smoke runs:
a 2-layer BERT classifier with MiniLM's tokenizer and a 2-layer Llama with SmolLM2's."""

from __future__ import annotations

from pathlib import Path


def tiny_bert(folder: Path) -> str:
    """A random 2-class BERT (32 hidden, 2 layers) saved in ``folder`` (seeded: 0)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from explainlm.models.sources import resolve_source

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(resolve_source("minilm-l6").path)
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            num_labels=2,
            id2label={0: "negative", 1: "positive"},
            label2id={"negative": 0, "positive": 1},
        )
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def tiny_llama(folder: Path) -> str:
    """A random 2-layer Llama LM with SmolLM2's tokenizer saved in ``folder``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from explainlm.models.sources import resolve_source

    tok = AutoTokenizer.from_pretrained(resolve_source("smollm2-135m").path)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)
