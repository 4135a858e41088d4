"""Fairness and social-bias data sets (``<data>/fairness/`` and ``<data>/biosbias/``).

Each loader returns plain records and raises :class:`~explainlm.errors.DataFormatError` naming the
file and line of a malformed row. Citations: EEC (Kiritchenko & Mohammad 2018), CrowS-Pairs (Nangia
et al. 2020), BBQ (Parrish et al. 2022), WinoBias (Zhao et al. 2018), BOLD (Dhamala et al. 2021),
Bias in Bios (De-Arteaga et al. 2019; rationales: Eberle et al. 2023).

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
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainlm.datasets.tables import read_table
from explainlm.errors import DataFormatError, UserError
from explainlm.models.words import split_words
from explainlm.paths import data_dir as resolve_data_dir

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
BIOS_SPLIT_TRAIN = 0.6  # share of each (occupation, gender) stratum in the train split


def fairness_path(relative: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    p = resolve_data_dir(data_dir) / relative
    if not p.exists():
        raise UserError(f"data not found: {p}")
    return p


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, i, f"invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(path, i, "each line must be a JSON object")
            rows.append((i, obj))
    return rows


def _need(obj: dict[str, Any], keys: Sequence[str], path: Path, line: int) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataFormatError(path, line, f"missing field(s): {', '.join(missing)}")


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
    _need(
        obj,
        ("example_id", "context", "question", "ans0", "ans1", "ans2", "label", "answer_info"),
        path,
        line,
    )
    _need(obj, ("context_condition", "question_polarity", "additional_metadata"), path, line)
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
        items = [_bbq_item(obj, cat, path, line) for line, obj in _jsonl(path)]
        if per_category is not None and per_category < len(items):
            items = sorted(random.Random(f"{seed}-{cat}").sample(items, per_category), key=_line)
        out += items
    return out


def _line(x: Any) -> int:
    return int(x.line)


# ------------------------------------------------------------------------------- WinoBias
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


# ------------------------------------------------------------------------------ Bias in Bios
@dataclass
class Bio:
    id: str
    text: str
    occupation: str
    gender: str
    split: str
    line: int


def _split_of(text: str, rank: int, size: int) -> str:
    return "train" if rank < round(BIOS_SPLIT_TRAIN * size) else "test"


def load_biosbias(
    *, data_dir: str | os.PathLike[str] | None = None, split: str | None = None
) -> list[Bio]:
    """The 339 Bias-in-Bios biographies (5 medical occupations) with a fixed 60/40 split.

    The split is stratified by (occupation, gender), ordered by a CRC32 of the text, so it is the
    same on every machine.
    """
    if split not in (None, "train", "test", "all"):
        raise UserError(f"biosbias split must be train, test or all, not {split!r}")
    path = fairness_path("biosbias/biosbias.csv", data_dir)
    t = read_table(path, text_column="text", label_column="title", extra_columns=("gender_name",))
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (lab, g) in enumerate(zip(t.labels or [], t.extra["gender_name"], strict=True)):
        if str(g) not in ("male", "female"):
            raise DataFormatError(path, t.lines[i], f"gender_name must be male or female: {g!r}")
        strata[(lab, str(g))].append(i)
    split_of: dict[int, str] = {}
    for rows in strata.values():
        ranked = sorted(rows, key=lambda i: zlib.crc32(t.texts[i].encode("utf-8")))
        for r, i in enumerate(ranked):
            split_of[i] = _split_of(t.texts[i], r, len(rows))
    out = [
        Bio(
            f"bio-{t.lines[i]}",
            t.texts[i],
            (t.labels or [])[i],
            str(t.extra["gender_name"][i]),
            split_of[i],
            t.lines[i],
        )
        for i in range(len(t.texts))
    ]
    return [b for b in out if split in (None, "all") or b.split == split]


@dataclass
class BioRationale:
    """A bio with the majority-vote human rationale (one 0/1 flag per word unit)."""

    id: str
    text: str
    occupation: str
    gender: str
    rationale: list[int]
    kind: str  # standard | contrastive
    foil: str | None = None
    annotators: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


def load_bios_rationales(
    kind: str = "standard", *, data_dir: str | os.PathLike[str] | None = None
) -> list[BioRationale]:
    """Human rationales on bios (Eberle et al. 2023): majority vote of the accepted annotations.

    ``standard``: "why this occupation"; ``contrastive``: "why this occupation rather than the
    foil" (one example per bio and foil). Spans are character offsets into the annotation prompt;
    they are mapped onto the word units of the bio text that follows ``Bio:``.
    """
    if kind not in ("standard", "contrastive"):
        raise UserError(f"rationale kind must be standard or contrastive, not {kind!r}")
    path = fairness_path(f"biosbias/{kind}_rationales.jsonl", data_dir)
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for line, obj in _jsonl(path):
        _need(obj, ("text", "label", "gender"), path, line)
        if obj.get("answer") != "accept":
            continue
        prompt = obj["text"]
        at = prompt.find("Bio: ")
        if at < 0:
            raise DataFormatError(path, line, "no 'Bio: ' in the annotation text")
        start = at + len("Bio: ")
        bio = prompt[start:]
        words = split_words(bio)
        flags = [0] * len(words)
        for sp in obj.get("spans") or []:
            s, e = int(sp["start"]) - start, int(sp["end"]) - start
            for j, (ws, we) in enumerate(words):
                if ws < e and we > s:
                    flags[j] = 1
        foil = str(obj["foil"]).lower() if kind == "contrastive" and obj.get("foil") else None
        key = (bio, foil)
        entry = groups.setdefault(
            key,
            {
                "votes": [],
                "label": str(obj["label"]).lower(),
                "gender": obj["gender"],
                "line": line,
            },
        )
        entry["votes"].append(flags)
    out = []
    for n, ((bio, foil), e) in enumerate(groups.items()):
        votes = e["votes"]
        majority = [int(sum(col) * 2 > len(votes)) for col in zip(*votes, strict=True)]
        out.append(
            BioRationale(
                f"{kind}-{n}",
                bio,
                e["label"],
                e["gender"],
                majority,
                kind,
                foil,
                len(votes),
                {"line": e["line"]},
            )
        )
    return out


def biosbias_table(split: str | None = "train", *, data_dir: str | os.PathLike[str] | None = None):  # noqa: ANN201
    """The bios of a split as a :class:`~explainlm.datasets.tables.TextTable` (label = occupation,
    ``extra["gender"]``), so ``explainlm train biosbias:train`` reads it like a file."""
    from explainlm.datasets.tables import TextTable

    bios = load_biosbias(data_dir=data_dir, split=split)
    path = fairness_path("biosbias/biosbias.csv", data_dir)
    return TextTable(
        path,
        [b.text for b in bios],
        [b.occupation for b in bios],
        [b.line for b in bios],
        {"gender": [b.gender for b in bios]},
    )


def read_fairness_labelled(source: str, **kw: Any) -> Any:
    """``biosbias[:SPLIT]`` as a labelled table; anything else is ``None`` (not a fairness set)."""
    name, _, split = str(source).partition(":")
    if name != "biosbias" or Path(str(source)).exists():
        return None
    return biosbias_table(split or "train", **kw)
