"""Features and keep-masks: which units of a text a perturbation may remove, and the variant
encodings a keep-mask over them gives.

Features are word units (``granularity="word"``) or the user's text tokens (``"token"``); template
and special tokens are never features. Removing a feature means (``replace``): ``remove`` — the
word is deleted from the text, which is re-tokenized (token granularity: the token is deleted);
``mask`` / ``pad`` — its tokens are replaced by the mask (or unknown) / padding token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from explainlm.errors import UserError
from explainlm.models.words import remove_words
from explainlm.models.wrapper import Encoding, ModelWrapper

REPLACE = ("remove", "mask", "pad")
GRANULARITIES = ("word", "token")


def check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise UserError(f"granularity must be one of {', '.join(GRANULARITIES)}")


def encoding_features(encoding: Encoding, granularity: str) -> int:
    """Number of features of an encoding: its word units, or its text tokens."""
    if granularity == "word":
        return len(encoding.word_spans)
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
