"""WinoBias (Zhao et al. 2018): coreference sentences whose pronoun refers to an occupation, in
pro- and anti-stereotypical versions (``<data>/fairness/winobias/``)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from explainlm.datasets.fairness_files import fairness_path
from explainlm.errors import DataFormatError, UserError


@dataclass
class WinoBiasItem:
    """A WinoBias sentence, its (first) bracketed pronoun, and the right and wrong occupation.

    Type 1 needs world knowledge to resolve the pronoun, type 2 only syntax; pro-stereotypical
    sentences use the pronoun of the occupation's majority gender (US labour statistics), anti
    ones the other (Zhao et al. 2018).
    """

    id: str
    kind: str  # type1 | type2
    stereotype: str  # pro | anti
    sentence: str
    pronoun: str
    correct: str  # the occupation the pronoun refers to
    wrong: str  # the other occupation
    line: int


_BRACKETS = re.compile(r"\[([^\]]+)\]")


def _occupation(phrase: str) -> str:
    words = phrase.strip().split()
    while words and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words).lower()


def load_winobias(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
    kinds: Sequence[str] = ("type1", "type2"),
    limit: int | None = None,
) -> list[WinoBiasItem]:
    """WinoBias (Zhao et al. 2018): pro and anti sentences of each line, adjacent (pairs).

    ``limit`` keeps the first ``limit`` sentence pairs of each type.
    """
    if split not in ("dev", "test"):
        raise UserError(f"WinoBias split must be dev or test, not {split!r}")
    bad = [k for k in kinds if k not in ("type1", "type2")]
    if bad:
        raise UserError(f"unknown WinoBias type {', '.join(bad)}; known: type1, type2")
    root = fairness_path("fairness/winobias", data_dir)
    files = {
        (k, s): root / f"{s}_stereotyped_{k}.txt.{split}" for k in kinds for s in ("pro", "anti")
    }
    for f in files.values():
        if not f.is_file():
            raise UserError(f"WinoBias file not found: {f}")
    raw = {key: _winobias_lines(f) for key, f in files.items()}
    occupations = {
        _occupation(_BRACKETS.findall(s)[0]) for lines in raw.values() for _n, s in lines
    }
    out: list[WinoBiasItem] = []
    for k in kinds:
        pro, anti = raw[(k, "pro")], raw[(k, "anti")]
        if len(pro) != len(anti):
            raise DataFormatError(files[(k, "anti")], None, "pro and anti files differ in length")
        for n, ((line, ps), (_l, as_)) in enumerate(zip(pro, anti, strict=True)):
            if limit is not None and n >= limit:
                break  # the limit counts sentence pairs per type
            for stereo, s in (("pro", ps), ("anti", as_)):
                out.append(_winobias_item(s, k, stereo, line, files[(k, stereo)], occupations))
    return out


def _winobias_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            text = re.sub(r"^\d+\s+", "", line.strip())
            if len(_BRACKETS.findall(text)) < 2:
                raise DataFormatError(path, i, "expected [the referent] and a [pronoun]")
            out.append((i, text))
    return out


def _winobias_item(
    text: str, kind: str, stereo: str, line: int, path: Path, occupations: set[str]
) -> WinoBiasItem:
    spans = _BRACKETS.findall(text)
    right, pronoun = _occupation(spans[0]), spans[1]
    plain = re.sub(r"\bthe \[the ", "[the ", text, flags=re.IGNORECASE)
    plain = _BRACKETS.sub(lambda m: m.group(1), plain)
    others = [
        o
        for o in sorted(occupations, key=len, reverse=True)
        if o != right and re.search(rf"\b{re.escape(o)}\b", plain.lower())
    ]
    if not others:
        raise DataFormatError(path, line, "cannot find the second occupation")
    return WinoBiasItem(
        f"{kind}-{stereo}-{line}", kind, stereo, plain, pronoun, right, others[0], line
    )
