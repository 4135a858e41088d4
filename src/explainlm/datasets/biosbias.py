"""Bias in Bios (De-Arteaga et al. 2019): 339 biographies of five medical occupations with the
subject's gender, on a fixed stratified split, and human rationales on them (Eberle et al. 2023)
(``<data>/biosbias/``)."""

from __future__ import annotations

import os
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainlm.datasets.fairness_files import fairness_path, read_jsonl_objects, require_fields
from explainlm.datasets.tables import read_table
from explainlm.errors import DataFormatError, UserError
from explainlm.models.words import split_words

GENDERS = ("female", "male")  # the values of the data's gender_name column
BIOS_SPLIT_TRAIN = 0.6  # share of each (occupation, gender) stratum in the train split


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
        if str(g) not in GENDERS:
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
    for line, obj in read_jsonl_objects(path):
        require_fields(obj, ("text", "label", "gender"), path, line)
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
