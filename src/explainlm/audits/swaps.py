"""Identity-term swap lists for counterfactual audits and counterfactual data augmentation.

Default lists (``gender``, ``race``), with sources:

* gendered words: the pairs of the WinoBias gender-swap list (Zhao et al. 2018, "Gender Bias in
  Coreference Resolution", their ``generalized_swaps`` plus the male/female word lists) and of
  counterfactual data augmentation (Lu et al. 2018, "Gender Bias in Neural Natural Language
  Processing"), restricted here to common English words: pronouns, family and relationship
  terms, titles and gendered occupations;
* first names: the 40 names of the Equity Evaluation Corpus (Kiritchenko & Mohammad 2018), ten
  per (African-American | European) × (female | male), paired in alphabetical order within a
  group. ``gender`` swaps female ↔ male names within a race, ``race`` swaps African-American ↔
  European names within a gender.

``her`` is ambiguous (``his`` or ``him``): it becomes ``his`` when a word follows that is not a
function word or punctuation (``her book`` → ``his book``), else ``him`` (``told her.`` → ``told
him.``), a heuristic in the spirit of Zmigrod et al. (2019), who resolve it with a parser.

>>> swap_text("She told her brother that Ebony is a nurse.", GENDER)
('He told his sister that Alonzo is a nurse.', 4)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from explainlm.errors import DataFormatError, UserError

GENDER_WORDS: list[tuple[str, str]] = [
    ("he", "she"), ("him", "her"), ("his", "her"), ("himself", "herself"), ("man", "woman"),
    ("men", "women"), ("boy", "girl"), ("boys", "girls"), ("father", "mother"),
    ("fathers", "mothers"), ("son", "daughter"), ("sons", "daughters"), ("brother", "sister"),
    ("brothers", "sisters"), ("husband", "wife"), ("husbands", "wives"),
    ("boyfriend", "girlfriend"), ("boyfriends", "girlfriends"), ("uncle", "aunt"),
    ("uncles", "aunts"), ("nephew", "niece"), ("nephews", "nieces"), ("dad", "mom"),
    ("dads", "moms"), ("daddy", "mommy"), ("grandfather", "grandmother"),
    ("grandson", "granddaughter"), ("grandpa", "grandma"), ("king", "queen"),
    ("kings", "queens"), ("prince", "princess"), ("gentleman", "lady"), ("gentlemen", "ladies"),
    ("sir", "madam"), ("mr", "ms"), ("mr.", "ms."), ("male", "female"), ("males", "females"),
    ("masculine", "feminine"), ("actor", "actress"), ("actors", "actresses"),
    ("waiter", "waitress"), ("waiters", "waitresses"), ("steward", "stewardess"),
    ("fiance", "fiancee"), ("groom", "bride"), ("bachelor", "spinster"), ("lad", "lass"),
    ("stepfather", "stepmother"), ("stepson", "stepdaughter"), ("godfather", "godmother"),
    ("fraternity", "sorority"), ("chairman", "chairwoman"), ("spokesman", "spokeswoman"),
    ("businessman", "businesswoman"), ("congressman", "congresswoman"),
]  # fmt: skip

EEC_NAMES: dict[tuple[str, str], list[str]] = {
    ("African-American", "female"): sorted(
        ["Ebony", "Jasmine", "Lakisha", "Latisha", "Latoya", "Nichelle", "Shaniqua", "Shereen",
         "Tanisha", "Tia"]
    ),
    ("African-American", "male"): sorted(
        ["Alonzo", "Alphonse", "Darnell", "Jamel", "Jerome", "Lamar", "Leroy", "Malik",
         "Terrence", "Torrance"]
    ),
    ("European", "female"): sorted(
        ["Amanda", "Betsy", "Courtney", "Ellen", "Heather", "Katie", "Kristin", "Melanie", "Nancy",
         "Stephanie"]
    ),
    ("European", "male"): sorted(
        ["Adam", "Alan", "Andrew", "Frank", "Harry", "Jack", "Josh", "Justin", "Roger", "Ryan"]
    ),
}  # fmt: skip

_FUNCTION_WORDS = {
    "a", "an", "the", "and", "or", "but", "to", "in", "on", "at", "for", "of", "with", "from",
    "by", "about", "as", "that", "this", "if", "when", "because", "so", "is", "was", "be",
    "up", "out", "off", "down", "back", "again", "too", "very", "yesterday", "today", "now",
}  # fmt: skip


@dataclass(frozen=True)
class SwapList:
    """Term pairs of one dimension: ``sides`` name the two sides (``male``, ``female``)."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    sides: tuple[str, str]
    source: str

    def mapping(self) -> dict[str, tuple[str, int]]:
        """lower-case term → (replacement, side of the term: 0 or 1)."""
        out: dict[str, tuple[str, int]] = {}
        for a, b in self.pairs:
            out.setdefault(a.lower(), (b, 0))
            out.setdefault(b.lower(), (a, 1))
        return out


def _name_pairs(swap: str) -> list[tuple[str, str]]:
    if swap == "gender":
        return [
            (m, f)
            for race in ("African-American", "European")
            for m, f in zip(EEC_NAMES[(race, "male")], EEC_NAMES[(race, "female")], strict=True)
        ]
    return [
        (e, a)
        for g in ("female", "male")
        for e, a in zip(EEC_NAMES[("European", g)], EEC_NAMES[("African-American", g)], strict=True)
    ]


GENDER = SwapList(
    "gender",
    tuple(GENDER_WORDS + _name_pairs("gender")),
    ("male", "female"),
    "Zhao et al. 2018 and Lu et al. 2018 (words); Kiritchenko & Mohammad 2018 (names)",
)
RACE = SwapList(
    "race",
    tuple(_name_pairs("race")),
    ("European", "African-American"),
    "Kiritchenko & Mohammad 2018 (EEC first names)",
)
SWAP_LISTS: dict[str, SwapList] = {"gender": GENDER, "race": RACE}

_WORD = re.compile(r"[A-Za-z][A-Za-z'.]*[A-Za-z.]|[A-Za-z]")


def get_swap_list(name_or_path: str) -> SwapList:
    """A default list by name (``gender``, ``race``) or a user file of term pairs."""
    if name_or_path in SWAP_LISTS:
        return SWAP_LISTS[name_or_path]
    p = Path(name_or_path)
    if p.suffix.lower() in (".csv", ".tsv", ".txt") or p.exists():
        return read_swap_file(p)
    raise UserError(
        f"unknown swap list {name_or_path!r}; use {', '.join(SWAP_LISTS)} or a CSV/TSV file of "
        "term pairs"
    )


def read_swap_file(path: str | os.PathLike[str]) -> SwapList:
    """Term pairs from a two-column CSV/TSV file; a header row ``a,b`` names the two sides."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"swap file not found: {p}")
    delim = "\t" if p.suffix.lower() == ".tsv" else ","
    lines = p.read_text(encoding="utf-8-sig").splitlines()
    pairs: list[tuple[str, str]] = []
    sides = ("a", "b")
    for i, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split(delim)]
        if len(cells) != 2 or not all(cells):
            raise DataFormatError(p, i, f"expected two non-empty terms separated by {delim!r}")
        if i == 1 and cells[0].lower() in ("a", "term_a", "side_a", "male", "group_a"):
            sides = (cells[0], cells[1])
            continue
        if cells[0].lower() == cells[1].lower():
            raise DataFormatError(p, i, f"a term cannot swap with itself ({cells[0]!r})")
        pairs.append((cells[0], cells[1]))
    if not pairs:
        raise DataFormatError(p, None, "no term pairs found")
    return SwapList(p.stem, tuple(pairs), sides, str(p))


def _case_like(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word.lower() if template.islower() else word


def swap_text(text: str, swaps: SwapList) -> tuple[str, int]:
    """``text`` with every listed term replaced by its partner (case kept) and the swap count."""
    out, count, _sides = swap_with_sides(text, swaps)
    return out, count


def swap_with_sides(text: str, swaps: SwapList) -> tuple[str, int, list[int]]:
    """Like :func:`swap_text`, also returning the side (0/1) of every swapped term."""
    table = swaps.mapping()
    parts: list[str] = []
    sides: list[int] = []
    last = 0
    matches = list(_WORD.finditer(text))
    for k, m in enumerate(matches):
        word = m.group(0)
        key = word.lower()
        if key not in table and key.rstrip(".") in table:
            key = key.rstrip(".")
            word = word.rstrip(".")
        if key not in table:
            continue
        repl, side = table[key]
        if swaps is GENDER and key == "her":
            nxt = matches[k + 1].group(0).lower() if k + 1 < len(matches) else ""
            gap = text[m.end() : matches[k + 1].start()] if k + 1 < len(matches) else "."
            repl = "his" if nxt and gap.strip() == "" and nxt not in _FUNCTION_WORDS else "him"
        parts.append(text[last : m.start()] + _case_like(word, repl))
        last = m.start() + len(word)
        sides.append(side)
    parts.append(text[last:])
    return "".join(parts), len(sides), sides


def identity_spans(text: str, swaps: SwapList) -> list[tuple[int, int]]:
    """Character spans of the listed terms in ``text``."""
    table = swaps.mapping()
    out = []
    for m in _WORD.finditer(text):
        w = m.group(0).lower()
        if w in table:
            out.append((m.start(), m.end()))
        elif w.rstrip(".") in table:
            out.append((m.start(), m.start() + len(w.rstrip("."))))
    return out


def swap_summary(lists: Mapping[str, SwapList] | None = None) -> list[dict[str, object]]:
    """The default lists as documentation rows (name, sides, number of pairs, source)."""
    return [
        {"name": s.name, "sides": list(s.sides), "pairs": len(s.pairs), "source": s.source}
        for s in (lists or SWAP_LISTS).values()
    ]


def swapped_copies(texts: Sequence[str], swaps: SwapList) -> list[tuple[int, str]]:
    """(index, swapped text) for every text that contains at least one listed term."""
    out = []
    for i, t in enumerate(texts):
        new, n = swap_text(t, swaps)
        if n:
            out.append((i, new))
    return out
