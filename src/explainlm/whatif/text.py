"""Word-level edits of a text: applying them, marking them, and measuring how far a text moved.

Words are the project's word units (:func:`explainlm.models.words.split_words`), so an edit at word
``i`` means the same thing for every model. An :class:`Edit` replaces one word of the *original* text
(an empty replacement deletes it); :func:`apply_edits` renders the edited text and where each edit
landed in it, which is what highlighting and side-by-side diffs need.

>>> t = WordText.of("the film was dull .")
>>> new = t.apply([Edit(3, "dull", "lively", "embedding")])
>>> new.text, new.spans
('the film was lively .', [(13, 19)])
>>> t.apply([Edit(3, "dull", "", "delete")]).text
'the film was .'
>>> word_edit_distance("the film was dull".split(), "the movie was".split())
2
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from explainlm.models.words import split_words

_SPACES = re.compile(r"[ \t]{2,}")
_ALPHA = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Edit:
    """Word ``index`` of the original text: ``original`` becomes ``replacement`` ("" deletes it).

    ``source`` says where the replacement came from (``llm``, ``embedding``, ``delete``, ``typo``,
    ``hotflip``, ``user``).
    """

    index: int
    original: str
    replacement: str
    source: str = "user"

    @property
    def kind(self) -> str:
        return "delete" if not self.replacement else "replace"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "original": self.original,
            "replacement": self.replacement,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Edit:
        return cls(int(d["index"]), str(d["original"]), str(d["replacement"]), str(d["source"]))


@dataclass(frozen=True)
class EditedText:
    """An edited text, its edits, and the character span of each replacement in it.

    A deletion's span is empty (start == end) at the place the word was.
    """

    text: str
    edits: tuple[Edit, ...]
    spans: list[tuple[int, int]]

    def marked(self, left: str = "[[", right: str = "]]") -> str:
        """The edited text with every edit shown as ``[[old -> new]]`` (``[[old -> ]]`` for a deletion)."""
        out, cursor = [], 0
        for e, (s, t) in sorted(zip(self.edits, self.spans, strict=True), key=lambda p: p[1]):
            out.append(self.text[cursor:s])
            out.append(f"{left}{e.original} -> {e.replacement}{right}")
            cursor = t
        out.append(self.text[cursor:])
        return "".join(out)


@dataclass(frozen=True)
class WordText:
    """A text and its word units (character spans)."""

    text: str
    spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: str) -> WordText:
        return cls(text, tuple(split_words(text)))

    @property
    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans]

    def __len__(self) -> int:
        return len(self.spans)

    def is_editable(self, i: int) -> bool:
        """Whether word ``i`` has a letter in it (punctuation and numbers are left alone)."""
        s, e = self.spans[i]
        return bool(_ALPHA.search(self.text[s:e]))

    def apply(self, edits: Iterable[Edit]) -> EditedText:
        return apply_edits(self, edits)

    def replace(self, replacements: dict[int, str]) -> str:
        """The text with word ``i`` replaced by ``replacements[i]`` ("" deletes it); only the text."""
        return _render(self, replacements)[0]


def _render(wt: WordText, replacements: dict[int, str]) -> tuple[str, dict[int, tuple[int, int]]]:
    pieces: list[str] = []
    where: dict[int, tuple[int, int]] = {}
    cursor, length = 0, 0
    for i in sorted(replacements):
        s, e = wt.spans[i]
        gap = wt.text[cursor:s]
        new = replacements[i]
        if not new:  # a deletion also drops one space next to the word
            if gap.endswith(" "):
                gap = gap[:-1]
            elif wt.text[e : e + 1] == " ":
                e += 1
        pieces.append(gap)
        length += len(gap)
        where[i] = (length, length + len(new))
        pieces.append(new)
        length += len(new)
        cursor = e
    pieces.append(wt.text[cursor:])
    return "".join(pieces), where


def apply_edits(wt: WordText, edits: Iterable[Edit]) -> EditedText:
    """Apply edits (at most one per word) to the original text."""
    edits = tuple(sorted(edits, key=lambda e: e.index))
    seen: set[int] = set()
    for e in edits:
        if e.index in seen:
            raise ValueError(f"two edits of word {e.index}")
        if not 0 <= e.index < len(wt):
            raise ValueError(f"edit of word {e.index}, but the text has {len(wt)} words")
        seen.add(e.index)
    text, where = _render(wt, {e.index: e.replacement for e in edits})
    return EditedText(text, edits, [where[e.index] for e in edits])


def match_case(word: str, like: str) -> str:
    """``word`` capitalised like ``like`` (``Great`` → ``Awful``, ``GREAT`` → ``AWFUL``)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def word_edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (insert, delete, substitute cost 1)."""
    return _levenshtein(list(a), list(b))


def char_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    return _levenshtein(list(a), list(b))


def _levenshtein(a: list[Any], b: list[Any]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def diff_words(original: str, edited: str) -> list[dict[str, Any]]:
    """A word-level diff: ``{"op": "equal"|"delete"|"insert"|"replace", "a": [...], "b": [...]}``.

    Used for side-by-side views of any two texts (a user may have typed the edited one).
    """
    from difflib import SequenceMatcher

    a = WordText.of(original).words
    b = WordText.of(edited).words
    ops = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        ops.append({"op": tag, "a": a[i1:i2], "b": b[j1:j2]})
    return ops


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
