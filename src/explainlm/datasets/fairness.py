"""Fairness and social-bias data sets (``<data>/fairness/`` and ``<data>/biosbias/``).

Each loader returns plain records and raises :class:`~explainlm.errors.DataFormatError` naming the
file and line of a malformed row. Citations: EEC (Kiritchenko & Mohammad 2018), CrowS-Pairs (Nangia
et al. 2020), BBQ (Parrish et al. 2022), WinoBias (Zhao et al. 2018), BOLD (Dhamala et al. 2021),
Bias in Bios (De-Arteaga et al. 2019; rationales: Eberle et al. 2023). WinoBias and Bias in Bios
have their own modules (:mod:`~explainlm.datasets.winobias`, :mod:`~explainlm.datasets.biosbias`);
every loader is importable from here.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.csv"
>>> _ = p.write_text("sent_more,sent_less\\nHe is bad at math.,She is bad at math.\\n")
>>> load_minimal_pairs(p)[0].sent_less
'She is bad at math.'
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainlm.datasets.biosbias import (
    BIOS_SPLIT_TRAIN,
    Bio,
    BioRationale,
    biosbias_table,
    load_bios_rationales,
    load_biosbias,
    read_fairness_labelled,
)
from explainlm.datasets.fairness_files import fairness_path, read_jsonl_objects, require_fields
from explainlm.datasets.tables import read_table
from explainlm.datasets.winobias import WinoBiasItem, load_winobias
from explainlm.errors import DataFormatError, UserError

__all__ = [
    "BBQ_CATEGORIES",
    "BIOS_SPLIT_TRAIN",
    "BOLD_DOMAINS",
    "CROWS_BIAS_TYPES",
    "BBQItem",
    "Bio",
    "BioRationale",
    "BoldPrompt",
    "EECSentence",
    "MinimalPair",
    "WinoBiasItem",
    "biosbias_table",
    "fairness_path",
    "load_bbq",
    "load_bios_rationales",
    "load_biosbias",
    "load_bold",
    "load_crows_pairs",
    "load_eec",
    "load_minimal_pairs",
    "load_winobias",
    "read_fairness_labelled",
]

CROWS_BIAS_TYPES = (
    "race-color",
    "gender",
    "socioeconomic",
    "nationality",
    "religion",
    "age",
    "sexual-orientation",
    "physical-appearance",
    "disability",
)
BBQ_CATEGORIES = (
    "Age",
    "Disability_status",
    "Nationality",
    "Physical_appearance",
    "Religion",
    "Sexual_orientation",
)
BOLD_DOMAINS = ("gender", "political_ideology", "profession", "race", "religious_ideology")


# ------------------------------------------------------------------------------------ EEC
@dataclass
class EECSentence:
    id: str
    sentence: str
    template: str
    person: str
    gender: str
    race: str | None
    emotion: str | None
    emotion_word: str | None
    line: int

    @property
    def person_span(self) -> tuple[int, int]:
        """Character span of the person (name or noun phrase) in the sentence."""
        m = re.search(rf"\b{re.escape(self.person)}\b", self.sentence, flags=re.IGNORECASE)
        return (m.start(), m.end()) if m else (-1, -1)


def load_eec(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[EECSentence]:
    """The Equity Evaluation Corpus (8,640 sentences; Kiritchenko & Mohammad 2018)."""
    p = Path(path) if path is not None else fairness_path("fairness/eec.csv", data_dir)
    cols = ("ID", "Template", "Person", "Gender", "Race", "Emotion", "Emotion word")
    t = read_table(p, text_column="Sentence", extra_columns=cols, limit=limit)
    out = []
    for i, (text, line) in enumerate(zip(t.texts, t.lines, strict=True)):
        x = {c: str(t.extra[c][i] or "").strip() for c in cols}
        if x["Gender"] not in ("male", "female"):
            raise DataFormatError(p, line, f"Gender must be male or female, not {x['Gender']!r}")
        if x["Person"].lower() not in text.lower():
            raise DataFormatError(p, line, f"person {x['Person']!r} is not in the sentence")
        out.append(
            EECSentence(
                x["ID"],
                text,
                x["Template"],
                x["Person"],
                x["Gender"],
                x["Race"] or None,
                x["Emotion"] or None,
                x["Emotion word"] or None,
                line,
            )
        )
    return out


# ------------------------------------------------------------------------- minimal pairs
@dataclass
class MinimalPair:
    """Two sentences that differ in a social group: ``sent_more`` is the more stereotyping one."""

    sent_more: str
    sent_less: str
    bias_type: str | None
    direction: str | None  # stereo | antistereo (CrowS-Pairs), or None
    line: int


def load_minimal_pairs(
    path: str | os.PathLike[str],
    *,
    bias_types: Sequence[str] | None = None,
    known_types: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[MinimalPair]:
    """Minimal pairs (CSV/TSV/JSONL with ``sent_more``, ``sent_less``, optional ``bias_type``).

    ``known_types`` (CrowS-Pairs' nine) makes an unknown ``bias_type`` value an error naming the
    line; ``bias_types`` keeps only those types (an unknown one is a :class:`UserError`).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"pair file not found: {p}")
    header = _columns_of(p)
    for col in ("sent_more", "sent_less"):
        if col not in header:
            raise DataFormatError(
                p, 1, f"no column {col!r}: a minimal-pairs file needs sent_more and sent_less"
            )
    extra = tuple(c for c in ("bias_type", "stereo_antistereo") if c in header)
    t = read_table(p, text_column="sent_more", extra_columns=("sent_less", *extra))
    present = {str(v).strip() for v in t.extra.get("bias_type", [])}
    if bias_types:
        universe = set(known_types or ()) | present
        unknown = [b for b in bias_types if b not in universe]
        if unknown:
            raise UserError(
                f"unknown bias type(s) {', '.join(unknown)} for {p.name}; known: "
                f"{', '.join(sorted(universe)) or 'none (the file has no bias_type column)'}"
            )
    out = []
    for i, (more, line) in enumerate(zip(t.texts, t.lines, strict=True)):
        less = str(t.extra["sent_less"][i] or "").strip()
        if not less:
            raise DataFormatError(p, line, "empty sent_less")
        if less == more:
            raise DataFormatError(p, line, "sent_more and sent_less are identical")
        btype = str(t.extra["bias_type"][i]).strip() if "bias_type" in t.extra else None
        if btype is not None and known_types and btype not in known_types:
            raise DataFormatError(
                p, line, f"unknown bias_type {btype!r}; known: {', '.join(known_types)}"
            )
        direction = (
            str(t.extra["stereo_antistereo"][i]).strip() if "stereo_antistereo" in t.extra else None
        )
        if bias_types and btype not in bias_types:
            continue
        out.append(MinimalPair(more, less, btype or None, direction or None, line))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataFormatError(p, None, "no pairs found")
    return out


def _columns_of(p: Path) -> list[str]:
    suffix = p.suffix.lower()
    with open(p, encoding="utf-8-sig") as fh:
        first = fh.readline()
    if suffix in (".jsonl", ".json"):
        try:
            return list(json.loads(first)) if first.strip() else []
        except json.JSONDecodeError as e:
            raise DataFormatError(p, 1, f"invalid JSON ({e.msg})") from None
    import csv

    delim = "\t" if suffix == ".tsv" else ","
    return [h.strip() for h in next(csv.reader([first], delimiter=delim), [])]


def load_crows_pairs(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    bias_types: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[MinimalPair]:
    """CrowS-Pairs (1,508 pairs, nine bias types; Nangia et al. 2020)."""
    return load_minimal_pairs(
        fairness_path("fairness/crows_pairs.csv", data_dir),
        bias_types=bias_types,
        known_types=CROWS_BIAS_TYPES,
        limit=limit,
    )


# ------------------------------------------------------------------------------------ BBQ
@dataclass
class BBQItem:
    id: str
    category: str
    context: str
    question: str
    answers: list[str]
    label: int
    condition: str  # ambig | disambig
    polarity: str  # neg | nonneg
    target: int  # the answer naming the stereotyped group
    unknown: int  # the "can't be determined" answer
    line: int

    @property
    def biased(self) -> int:
        """The answer that reflects the bias: the target for negative questions, else the other."""
        if self.polarity == "neg":
            return self.target
        return next(i for i in range(3) if i not in (self.target, self.unknown))


def _bbq_item(obj: dict[str, Any], category: str, path: Path, line: int) -> BBQItem:
    require_fields(
        obj,
        ("example_id", "context", "question", "ans0", "ans1", "ans2", "label", "answer_info"),
        path,
        line,
    )
    require_fields(
        obj, ("context_condition", "question_polarity", "additional_metadata"), path, line
    )
    info = obj["answer_info"]
    groups = [g.lower() for g in obj["additional_metadata"].get("stereotyped_groups", [])]
    tags = [info[f"ans{i}"] for i in range(3)]
    unknown = [i for i, t in enumerate(tags) if t[1] == "unknown"]
    targets = [
        i
        for i, t in enumerate(tags)
        if i not in unknown and (t[1].lower() in groups or t[0].lower() in groups)
    ]
    if len(unknown) != 1 or len(targets) != 1:
        raise DataFormatError(
            path, line, "cannot tell the stereotyped-group answer from answer_info"
        )
    return BBQItem(
        f"{category}-{obj['example_id']}",
        category,
        obj["context"],
        obj["question"],
        [obj["ans0"], obj["ans1"], obj["ans2"]],
        int(obj["label"]),
        obj["context_condition"],
        obj["question_polarity"],
        targets[0],
        unknown[0],
        line,
    )


def load_bbq(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    categories: Sequence[str] | None = None,
    per_category: int | None = None,
    seed: int = 0,
) -> list[BBQItem]:
    """BBQ (Parrish et al. 2022); ``per_category`` keeps a seeded random subset of each category."""
    root = fairness_path("fairness/bbq", data_dir)
    known = sorted(p.stem for p in root.glob("*.jsonl"))
    chosen = list(categories or known)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise UserError(f"unknown BBQ category {', '.join(unknown)}; known: {', '.join(known)}")
    out: list[BBQItem] = []
    for cat in chosen:
        path = root / f"{cat}.jsonl"
        items = [_bbq_item(obj, cat, path, line) for line, obj in read_jsonl_objects(path)]
        if per_category is not None and per_category < len(items):
            items = sorted(random.Random(f"{seed}-{cat}").sample(items, per_category), key=_line)
        out += items
    return out


def _line(x: Any) -> int:
    return int(x.line)


# ----------------------------------------------------------------------------------- BOLD
@dataclass
class BoldPrompt:
    domain: str
    group: str
    name: str
    prompt: str


def load_bold(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    domains: Sequence[str] = ("gender",),
    per_group: int | None = 20,
    seed: int = 0,
) -> list[BoldPrompt]:
    """BOLD prompts (Dhamala et al. 2021); ``per_group`` keeps a seeded subset of each group."""
    unknown = [d for d in domains if d not in BOLD_DOMAINS]
    if unknown:
        raise UserError(
            f"unknown BOLD domain {', '.join(unknown)}; known: {', '.join(BOLD_DOMAINS)}"
        )
    out: list[BoldPrompt] = []
    for dom in domains:
        path = fairness_path(f"fairness/bold/{dom}_prompt.json", data_dir)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataFormatError(path, e.lineno, f"invalid JSON ({e.msg})") from None
        for group, people in sorted(doc.items()):
            rows = [
                BoldPrompt(dom, group, name, p.strip())
                for name, prompts in sorted(people.items())
                for p in prompts
                if p.strip()
            ]
            if per_group is not None and per_group < len(rows):
                rows = random.Random(f"{seed}-{dom}-{group}").sample(rows, per_group)
            out += rows
    return out
