"""Fairness data loaders: real files (marked ``data``) and malformed synthetic files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from explainlm.audits.swaps import GENDER, RACE, read_swap_file, swap_text
from explainlm.datasets import fairness as F
from explainlm.errors import DataFormatError, UserError


@pytest.mark.data
def test_real_sets_load_with_their_documented_sizes(data_dir: Path) -> None:
    eec = F.load_eec()
    assert len(eec) == 8640 and all(e.person_span[0] >= 0 for e in eec)
    crows = F.load_crows_pairs()
    assert len(crows) == 1508
    assert Counter(p.bias_type for p in crows)["race-color"] == 516
    bbq = F.load_bbq()
    assert len(bbq) == 11956
    # the biased answer is a named group (never "unknown"), and differs from the target
    # exactly for non-negative questions
    assert all(b.biased != b.unknown for b in bbq)
    assert all((b.biased == b.target) == (b.polarity == "neg") for b in bbq)
    wino = F.load_winobias()
    assert len(wino) == 4 * 396 and {w.stereotype for w in wino} == {"pro", "anti"}
    assert all(w.correct != w.wrong and w.correct in w.sentence.lower() for w in wino)
    bios = F.load_biosbias()
    assert len(bios) == 339 and Counter(b.split for b in bios) == {"train": 205, "test": 134}
    rats = F.load_bios_rationales("contrastive")
    assert len(rats) == 113 and all(r.foil for r in rats)
    assert all(len(r.rationale) == len(r.text.split()) or r.rationale for r in rats)


@pytest.mark.data
def test_winobias_pairs_differ_only_in_the_pronoun(data_dir: Path) -> None:
    wino = F.load_winobias(kinds=["type1"], limit=20)
    assert len(wino) == 40
    for pro, anti in zip(wino[::2], wino[1::2], strict=True):
        assert (pro.stereotype, anti.stereotype) == ("pro", "anti")
        assert pro.correct == anti.correct and pro.pronoun != anti.pronoun
        blank = [re.sub(rf"\b{w.pronoun}\b", "_", w.sentence, count=1) for w in (pro, anti)]
        assert blank[0] == blank[1]


def test_minimal_pairs_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "pairs.csv"
    p.write_text("sent_more,sent_less,bias_type\nA b.,A c.,gender\nSame.,Same.,gender\n")
    with pytest.raises(
        DataFormatError, match=r"pairs\.csv, line 3: sent_more and sent_less are identical"
    ):
        F.load_minimal_pairs(p)
    p.write_text("sent_more,other\nA.,B.\n")
    with pytest.raises(DataFormatError, match=r"pairs\.csv, line 1: no column 'sent_less'"):
        F.load_minimal_pairs(p)
    p.write_text("sent_more,sent_less\nA.,B.\nC.\n")
    with pytest.raises(DataFormatError, match=r"line 3: expected 2 fields"):
        F.load_minimal_pairs(p)
    j = tmp_path / "pairs.jsonl"
    j.write_text(json.dumps({"sent_more": "x y", "sent_less": "x z"}) + "\n{bad\n")
    with pytest.raises(DataFormatError, match=r"pairs\.jsonl, line 2: invalid JSON"):
        F.load_minimal_pairs(j)
    p.write_text("sent_more,sent_less,bias_type\nA b.,A c.,gender\nD e.,D f.,gendr\n")
    with pytest.raises(DataFormatError, match=r"line 3: unknown bias_type 'gendr'"):
        F.load_minimal_pairs(p, known_types=F.CROWS_BIAS_TYPES)
    with pytest.raises(UserError, match=r"unknown bias type\(s\) age .* known: gender, gendr"):
        F.load_minimal_pairs(p, bias_types=["age"])
    assert [x.bias_type for x in F.load_minimal_pairs(p, bias_types=["gendr"])] == ["gendr"]


def test_bbq_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "fairness" / "bbq"
    root.mkdir(parents=True)
    row = {"example_id": 0, "context": "c", "question": "q", "ans0": "a", "ans1": "b",
           "ans2": "?", "label": 2, "context_condition": "ambig", "question_polarity": "neg",
           "answer_info": {"ans0": ["a", "old"], "ans1": ["b", "young"], "ans2": ["?", "unknown"]},
           "additional_metadata": {"stereotyped_groups": ["old"]}}  # fmt: skip
    bad = dict(row, answer_info={**row["answer_info"], "ans0": ["a", "middle"]})
    (root / "Age.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(bad) + "\n")
    monkeypatch.setenv("EXPLAINLM_DATA", str(tmp_path))
    with pytest.raises(DataFormatError, match=r"Age\.jsonl, line 2: cannot tell the stereotyped"):
        F.load_bbq()
    with pytest.raises(UserError, match="unknown BBQ category Race; known: Age"):
        F.load_bbq(categories=["Race"])


def test_swaps_keep_case_and_resolve_her() -> None:
    assert swap_text("Her book made him smile.", GENDER) == ("His book made her smile.", 2)
    assert swap_text("I told her.", GENDER)[0] == "I told him."
    assert swap_text("MR. Adam and my daughter", GENDER)[0] == "MS. Amanda and my son"
    assert (
        swap_text("Ebony met Adam.", RACE)[0] == "Alonzo met Amanda."
        or swap_text("Ebony met Adam.", RACE)[0].count(" met ") == 1
    )
    assert swap_text("The sky is blue.", GENDER) == ("The sky is blue.", 0)


def test_swap_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "pairs.csv"
    p.write_text("a,b\nsenior,junior\nold\n")
    with pytest.raises(DataFormatError, match=r"pairs\.csv, line 3: expected two non-empty terms"):
        read_swap_file(p)
    p.write_text("young,old\nelderly,elderly\n")
    with pytest.raises(DataFormatError, match="line 2: a term cannot swap with itself"):
        read_swap_file(p)
    p.write_text("young,old\n")
    assert swap_text("A young man.", read_swap_file(p))[0] == "A old man."
