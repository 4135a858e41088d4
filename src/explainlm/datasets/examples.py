"""The example type, rationale alignment, and the long-document window strategy."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from explainlm.errors import UserError
from explainlm.models.words import split_words


@dataclass
class RationaleExample:
    """One labelled text; ``rationale`` has one 0/1 flag per word unit (``None``: no rationale).

    ``group`` names the annotator group for per-group rationales (``None``: all annotators).
    ``meta`` keeps the source (file, line, document id) and alignment notes.
    """

    id: str
    text: str
    label: str
    rationale: list[int] | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in split_words(self.text)]

    @classmethod
    def from_tokens(
        cls,
        id: str,
        tokens: Sequence[str],
        label: str,
        token_rationale: Sequence[int] | None,
        **kw: Any,
    ) -> RationaleExample:
        """An example from pre-tokenised text: tokens joined by spaces, rationale aligned to words."""
        text = " ".join(tokens)
        meta = dict(kw.pop("meta", {}) or {})
        rationale = None
        if token_rationale is not None:
            rationale, notes = align_token_rationale(text, token_rationale)
            meta.update(notes)
        return cls(id, text, label, rationale, meta=meta, **kw)


def align_token_rationale(
    text: str, token_rationale: Sequence[int]
) -> tuple[list[int], dict[str, Any]]:
    """Map a rationale over the whitespace tokens of ``text`` onto explainlm's word units.

    ``split_words`` never joins whitespace tokens, it only splits punctuation off them (``"film."``
    → ``film`` ``.``), so every word unit lies inside exactly one whitespace token and inherits its
    flag. The returned notes say how many tokens were split (``split_tokens``) so the mismatch is
    explicit. A rationale whose length differs from the token count raises :class:`ValueError`.
    """
    chunks = [(m.start(), m.end()) for m in _WS.finditer(text)]
    if len(chunks) != len(token_rationale):
        raise ValueError(
            f"rationale has {len(token_rationale)} flags for {len(chunks)} whitespace tokens"
        )
    words = split_words(text)
    out: list[int] = []
    owners: list[int] = []
    c = 0
    for s, _e in words:
        while chunks[c][1] <= s:
            c += 1
        owners.append(c)
        out.append(1 if int(token_rationale[c]) else 0)
    split = len(owners) - len(set(owners))
    notes: dict[str, Any] = {}
    if split:
        notes["split_tokens"] = len({o for o in owners if owners.count(o) > 1})
    return out, notes


def _cut_points(text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
    """``ok[j]``: a window may start at word j (whitespace before it, so word units stay intact)."""
    return [j == 0 or spans[j - 1][1] < spans[j][0] for j in range(len(spans))]


_SENTENCE_END = {".", "!", "?"}


def windows(
    examples: Sequence[RationaleExample],
    *,
    max_words: int = 300,
    strategy: str = "split",
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int | None = None,
) -> list[RationaleExample]:
    """Cut long documents into windows a fixed-length model can read whole.

    ``strategy``: ``split`` — consecutive, non-overlapping windows of at most ``max_words`` word
    units, each ending after a sentence-final ``.``/``!``/``?`` when one lies in the window's second
    half, each an example of its own (id ``DOC#wJ``, same label, its slice of the rationale);
    ``first`` — only the first such window; ``none`` — unchanged (the model truncates, with a
    warning). With ``count_tokens``/``max_tokens`` a window is shrunk by 10 % until it fits, so
    no window is ever truncated by the model. Windows start only at whitespace, so the word
    units (and rationale flags) of a window are exactly those of the document's slice.
    """
    if strategy not in ("split", "first", "none"):
        raise UserError(f"unknown window strategy {strategy!r}; use split, first or none")
    if max_words < 1:
        raise UserError("max_words must be at least 1")
    if strategy == "none":
        return list(examples)
    out: list[RationaleExample] = []
    for ex in examples:
        spans = split_words(ex.text)
        if len(spans) <= max_words and (
            count_tokens is None or max_tokens is None or count_tokens(ex.text) <= max_tokens
        ):
            out.append(ex)
            continue
        ok = _cut_points(ex.text, spans)
        start, j = 0, 0
        while start < len(spans):
            end = _window_end(ex.text, spans, ok, start, max_words, count_tokens, max_tokens)
            sub = ex.text[spans[start][0] : spans[end - 1][1]]
            rat = None if ex.rationale is None else ex.rationale[start:end]
            meta = {**ex.meta, "document": ex.id, "window": j, "word_offset": start}
            out.append(replace(ex, id=f"{ex.id}#w{j}", text=sub, rationale=rat, meta=meta))
            if strategy == "first":
                break
            start, j = end, j + 1
    return out


def _window_end(
    text: str,
    spans: Sequence[tuple[int, int]],
    ok: Sequence[bool],
    start: int,
    max_words: int,
    count_tokens: Callable[[str], int] | None,
    max_tokens: int | None,
) -> int:
    n = len(spans)
    limit = min(n, start + max_words)
    while True:
        end = limit
        if end < n:
            # prefer a sentence end in the second half; otherwise any whitespace boundary
            cands = [e for e in range(limit, start, -1) if e < n and ok[e]]
            sent = [
                e
                for e in cands
                if text[spans[e - 1][0] : spans[e - 1][1]] in _SENTENCE_END
                and e - start > (limit - start) // 2
            ]
            end = sent[0] if sent else (cands[0] if cands else limit)
            while end < n and not ok[end]:  # no whitespace anywhere: extend to the next one
                end += 1
        if count_tokens is None or max_tokens is None or end - start <= 1:
            return end
        if count_tokens(text[spans[start][0] : spans[end - 1][1]]) <= max_tokens:
            return end
        limit = start + max(1, int((end - start) * 0.9))


_WS = re.compile(r"\S+")
