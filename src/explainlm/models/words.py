"""Word units: how a text is split into words, and how sub-word tokens map onto them.

A *word* is a whitespace-delimited chunk with leading and trailing punctuation split off as words of
their own (``"wonderful,"`` → ``wonderful`` ``,``), except a leading apostrophe clitic (``'s``, ``'re``)
which stays one word, so the pre-tokenised text of SST and ERASER keeps its own units. Words are
defined on the text, not by a tokenizer, so WordPiece and byte-level BPE models share the same units
and human rationales line up with them.

>>> [("it 's wonderful, truly"[s:e]) for s, e in split_words("it 's wonderful, truly")]
['it', "'s", 'wonderful', ',', 'truly']
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

_CHUNK = re.compile(r"\S+")
_APOSTROPHES = "'’"


def _split_chunk(chunk: str, base: int) -> list[tuple[int, int]]:
    n = len(chunk)
    i = 0
    while i < n and not chunk[i].isalnum():
        i += 1
    j = n
    while j > i and not chunk[j - 1].isalnum():
        j -= 1
    if i == n:  # punctuation only: one word
        return [(base, base + n)]
    spans: list[tuple[int, int]] = []
    lead = chunk[:i]
    if lead and lead[-1] in _APOSTROPHES:  # keep a clitic apostrophe on its word ('s, 're)
        if len(lead) > 1:
            spans.append((base, base + i - 1))
        i -= 1
    elif lead:
        spans.append((base, base + i))
    spans.append((base + i, base + j))
    if j < n:
        spans.append((base + j, base + n))
    return spans


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the words of ``text``."""
    spans: list[tuple[int, int]] = []
    for m in _CHUNK.finditer(text):
        spans.extend(_split_chunk(m.group(), m.start()))
    return spans


def assign_tokens_to_words(
    text: str,
    token_spans: Sequence[tuple[int, int] | None],
    word_spans: Sequence[tuple[int, int]],
) -> list[int]:
    """The word index of every token (``-1`` for tokens outside the text, e.g. special tokens).

    ``token_spans`` are character spans in ``text`` (``None`` outside it). Leading whitespace in a
    token's span (byte-level BPE ``Ġ`` tokens) is skipped; a token that starts inside a word belongs
    to it; a whitespace-only token belongs to the next word (or the previous one at the end).
    """
    starts = [s for s, _ in word_spans]
    out: list[int] = []
    for span in token_spans:
        if span is None or not word_spans:
            out.append(-1)
            continue
        s, e = span
        while s < e and text[s].isspace():
            s += 1
        k = bisect.bisect_right(starts, s) - 1
        if k >= 0 and s < word_spans[k][1]:
            out.append(k)
        elif k + 1 < len(word_spans):
            out.append(k + 1)
        else:
            out.append(max(k, 0))
    return out


def remove_words(text: str, word_spans: Sequence[tuple[int, int]], keep: Sequence[bool]) -> str:
    """``text`` without the words whose ``keep`` flag is False (whitespace left behind is collapsed).

    >>> remove_words("a good film .", split_words("a good film ."), [True, False, True, True])
    'a film .'
    """
    pieces: list[str] = []
    cursor = 0
    for (s, e), k in zip(word_spans, keep, strict=True):
        if not k:
            pieces.append(text[cursor:s])
            cursor = e
    pieces.append(text[cursor:])
    joined = "".join(pieces)
    return _SPACES.sub(" ", joined).strip()


_SPACES = re.compile(r"[ \t]{2,}")
