"""A BERT classifier with hand-set weights that is a sentiment lexicon: a known, graded model.

Every layer is made linear (LayerNorm's epsilon is huge and its weight rescales, so it only centres
the vector; attention is uniform; the feed-forward blocks are zero), so the [CLS] state is
(S / n, −S / n, 0, …) with S the summed lexicon scores of the text's tokens and n its token count,
and p(positive) = sigmoid(2·K·tanh(S / n)). Saved as a normal model directory, it loads through
every front-end like any fine-tuned classifier.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

POSITIVE = (
    "good great wonderful excellent fantastic terrific splendid lovely pleasant exciting "
    "entertaining interesting enjoyable touching funny hilarious best love fun brilliant"
).split()
NEGATIVE = (
    "bad dull boring bored bland awful terrible horrible worst hated waste mundane stale ugly "
    "tedious poor"
).split()
K = 4.0


def lexicon_score(word: str, positive=POSITIVE, negative=NEGATIVE) -> float:
    w = word.lower()
    return 1.0 if w in positive else -1.0 if w in negative else 0.0


def lexicon_prob(text_tokens: list[str], positive=POSITIVE, negative=NEGATIVE) -> float:
    """p(positive) for WordPiece tokens of the text (including [CLS] and [SEP])."""
    s = sum(lexicon_score(t, positive, negative) for t in text_tokens)
    return 1 / (1 + math.exp(-2 * K * math.tanh(s / len(text_tokens))))


def build_lexicon_bert(
    out: Path, tokenizer_dir: Path, positive=POSITIVE, negative=NEGATIVE
) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    h = 4
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=h,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=4,
        max_position_embeddings=128,
        num_labels=2,
        layer_norm_eps=1e8,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.fill_(1e4)  # LN(x) = 1e4 (x − mean) / sqrt(var + 1e8) ≈ x − mean
        emb = model.bert.embeddings.word_embeddings.weight
        vocab = tok.get_vocab()
        for word in list(positive) + list(negative):
            if word in vocab:
                s = lexicon_score(word, positive, negative)
                emb[vocab[word], 0], emb[vocab[word], 1] = s, -s
        att = model.bert.encoder.layer[0].attention
        att.self.value.weight.copy_(torch.eye(h))
        att.output.dense.weight.copy_(torch.eye(h))
        model.bert.pooler.dense.weight[0, 0] = 1.0
        model.classifier.weight[0, 0], model.classifier.weight[1, 0] = -K, K
    model.config.architectures = ["BertForSequenceClassification"]
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
