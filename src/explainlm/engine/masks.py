"""Features and keep-masks: which units of a text a perturbation may remove, and the variant
encodings a keep-mask over them gives.

Features are word units (``granularity="word"``), sentences (``"sentence"``: runs of words up to
one ending in ``.``, ``!``, ``?`` or a line break; for long texts, far fewer perturbations) or the
user's text tokens (``"token"``); template and special tokens are never features. Removing a feature means (``replace``): ``remove`` — the
word is deleted from the text, which is re-tokenized (token granularity: the token is deleted);
``mask`` / ``pad`` — its tokens are replaced by the mask (or unknown) / padding token.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import numpy as np

from explainlm.errors import UserError
from explainlm.models.words import remove_words
from explainlm.models.wrapper import Encoding, ModelWrapper

REPLACE = ("remove", "mask", "pad")
GRANULARITIES = ("word", "token", "sentence")
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def check_granularity(granularity: str, allowed: Sequence[str] = GRANULARITIES) -> None:
    if granularity not in allowed:
        raise UserError(f"granularity must be one of {', '.join(allowed)}, got {granularity!r}")


def sentence_ids(text: str, word_spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """The sentence of each word: a sentence ends after a word ending in ``.``, ``!``, ``?`` or
    ``…`` (closing quotes and brackets allowed) and at a line break.

    >>> from explainlm.models.words import split_words
    >>> text = "A fine film. Dull?\\nYes"
    >>> sentence_ids(text, split_words(text)).tolist()
    [0, 0, 0, 0, 1, 1, 2]
    """
    out, current = np.zeros(len(word_spans), dtype=np.int64), 0
    for i, (s, e) in enumerate(word_spans):
        out[i] = current
        nxt = word_spans[i + 1][0] if i + 1 < len(word_spans) else len(text)
        if SENTENCE_END.search(text[s:e]) or "\n" in text[e:nxt]:
            current += 1
    return out


def encoding_features(encoding: Encoding, granularity: str) -> int:
    """Number of features of an encoding: its word units, sentences, or text tokens."""
    if granularity == "word":
        return len(encoding.word_spans)
    if granularity == "sentence":
        ids = sentence_ids(encoding.text, encoding.word_spans)
        return int(ids.max()) + 1 if ids.size else 0
    return len(encoding.text_token_positions)


def replacement_id(wrapper: ModelWrapper, kind: str) -> int:
    """The token that stands in for a removed one: the mask (or unknown) token, or padding."""
    tok = wrapper.tokenizer
    if kind == "mask" and tok.mask_token_id is not None:
        return int(tok.mask_token_id)
    if kind == "mask" and tok.unk_token_id is not None:
        return int(tok.unk_token_id)
    return wrapper.pad_token_id


def mask_variants(
    wrapper: ModelWrapper,
    encodings: Sequence[Encoding],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
    encode: Callable[[list[str]], list[Encoding]],
) -> list[list[Encoding]]:
    """The variant encodings of each encoding under each keep-mask over its features.

    Word granularity with ``remove``: the words are deleted from the text, which ``encode``
    re-tokenizes (inside the task's template). Otherwise the features' tokens are deleted or replaced
    by :func:`replacement_id` in place.
    """
    if replace not in REPLACE:
        raise UserError(f"replace must be one of {', '.join(REPLACE)}")
    out: list[list[Encoding]] = []
    if granularity == "sentence":  # a sentence's words go together: word keep-masks
        masks = [np.asarray(m)[:, sentence_ids(e.text, e.word_spans)] for e, m in zip(
            encodings, masks, strict=True)]  # fmt: skip
        granularity = "word"
    for enc, m in zip(encodings, masks, strict=True):
        if replace == "remove" and granularity == "word":
            texts = [remove_words(enc.text, enc.word_spans, row) for row in m]
            out.append(encode(texts) if texts else [])
            continue
        ids = np.asarray(enc.input_ids)
        if granularity == "word":
            owner = np.asarray(enc.word_ids)  # feature of each token (-1 = not a feature)
            owner = np.where(np.asarray(enc.special), -1, owner)
        else:
            owner = np.full(len(ids), -1)
            owner[enc.text_token_positions] = np.arange(len(enc.text_token_positions))
        rows = []
        for row in m:
            dropped = (owner >= 0) & ~np.append(row, True)[owner]
            if replace == "remove":
                new_ids = ids[~dropped].tolist()
            else:
                new_ids = np.where(dropped, replacement_id(wrapper, replace), ids).tolist()
            rows.append(dataclasses.replace(enc, input_ids=new_ids))
        out.append(rows)
    return out


def check_masks(masks: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """A 2-D boolean keep-mask array whose width is one of ``widths`` (else a ``ValueError``)."""
    m = np.asarray(masks, dtype=bool)
    if m.ndim == 1 and m.size == 0:
        m = m.reshape(0, widths[0])
    if m.ndim != 2 or m.shape[1] not in widths:
        raise ValueError(f"keep-masks must be [n, {' or '.join(map(str, widths))}], got {m.shape}")
    return m
