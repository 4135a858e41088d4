"""Rationale dataset loaders: synthetic fixtures, errors, windows, and the real files (``data``)."""

from __future__ import annotations

import json

import pytest

from explainlm.datasets import (
    RationaleExample,
    align_token_rationale,
    load_dataset,
    load_eraser,
    load_generic,
    load_rationale_csv,
    load_sst_trees,
    windows,
)
from explainlm.datasets.loaders import parse_ptb
from explainlm.errors import DataFormatError, UserError


def test_align_splits_punctuation_explicitly() -> None:
    flags, notes = align_token_rationale("a film. it 's good", [0, 1, 0, 0, 1])
    # words: a film . it 's good — "film." is split into two words that both inherit its flag
    assert flags == [0, 1, 1, 0, 0, 1] and notes == {"split_tokens": 1}
    with pytest.raises(ValueError, match="2 flags for 3"):
        align_token_rationale("a b c", [0, 1])


def test_sst_tree_rationale(tmp_path) -> None:
    root, leaves = parse_ptb("(3 (2 It) (4 (3 works) (1 -LRB-bad-RRB-)))")
    assert root == 3 and leaves == [(2, "It"), (3, "works"), (1, "-LRB-bad-RRB-")]
    p = tmp_path / "t.txt"
    p.write_text(
        "(1 (2 a) (0 dull) (3 fun) (2 -LRB-))\n(2 (2 neutral) (2 line))\n(4 (4 great) (2 .))\n"
    )
    ex = load_sst_trees(p)
    assert [e.label for e in ex] == ["negative", "positive"]  # the neutral root is skipped
    assert ex[0].text == "a dull fun (" and ex[0].rationale == [0, 1, 0, 0]
    assert ex[1].rationale == [1, 0]
    p.write_text("(3 (2 ok)\n")
    with pytest.raises(DataFormatError, match=r"t\.txt, line 1"):
        load_sst_trees(p)


def test_rationale_csv_majority_and_groups(tmp_path) -> None:
    p = tmp_path / "sst.csv"
    rows = [
        ("good film .", "positive", [1, 1, 0], "A", 1),
        ("good film .", "positive", [1, 0, 0], "A", 2),
        ("good film .", "positive", [0, 1, 0], "B", 3),
    ]
    lines = ["sentence,original_label,rationale_binary,group_id,annotator_ID"]
    lines += [f'"{s}",{lab},"{json.dumps(r)}",{g},{a}' for s, lab, r, g, a in rows]
    p.write_text("\n".join(lines) + "\n")
    (ex,) = load_rationale_csv(p)
    assert ex.rationale == [1, 1, 0] and ex.meta["annotators"] == 3  # 2/3 and 2/3 votes
    (a,) = load_rationale_csv(p, group="A")
    assert a.rationale == [1, 0, 0] and a.group == "A"  # 1 of 2 votes is no majority
    per = load_rationale_csv(p, group="*")
    assert [(e.group, e.rationale) for e in per] == [("A", [1, 0, 0]), ("B", [0, 1, 0])]
    with pytest.raises(UserError, match="no annotator group"):
        load_rationale_csv(p, group="Z")
    p.write_text(lines[0] + '\n"good film .",positive,"[1, 2, 0]",A,1\n')
    with pytest.raises(DataFormatError, match="line 2"):
        load_rationale_csv(p)


def test_eraser_and_errors(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d1").write_text("a great film .\nreally fun !\n")
    ann = {
        "annotation_id": "d1",
        "classification": "POS",
        "evidences": [
            [{"docid": "d1", "start_token": 1, "end_token": 2}],
            [{"docid": "d1", "start_token": 5, "end_token": 6}],
        ],
    }
    (tmp_path / "test.jsonl").write_text(json.dumps(ann) + "\n{broken\n")
    with pytest.raises(DataFormatError, match=r"test\.jsonl, line 2"):
        load_eraser(tmp_path)
    (tmp_path / "test.jsonl").write_text(json.dumps(ann) + "\n")
    (ex,) = load_eraser(tmp_path)
    assert ex.label == "positive" and ex.text == "a great film . really fun !"
    assert ex.rationale == [0, 1, 0, 0, 0, 1, 0]
    ann["evidences"] = [[{"docid": "d1", "start_token": 5, "end_token": 60}]]
    (tmp_path / "test.jsonl").write_text(json.dumps(ann) + "\n")
    with pytest.raises(DataFormatError, match="outside document"):
        load_eraser(tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_eraser(tmp_path / "missing")


def test_generic_and_missing_data_dir(tmp_path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('text,label,rationale\n"nice one.",pos,"1 0"\nplain,neg,\n')
    ex = load_generic(p)
    assert ex[0].rationale == [1, 0, 0] and ex[1].rationale is None
    p.write_text('text,label,rationale\n"nice one.",pos,"1 0 1"\n')
    with pytest.raises(DataFormatError, match="line 2"):
        load_generic(p)
    with pytest.raises(UserError, match=str(tmp_path / "nowhere")):
        load_dataset("sst2", data_dir=tmp_path / "nowhere")
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("not-a-dataset")


def test_windows_split_first_and_token_budget() -> None:
    words = " ".join(f"w{i}" + (" ." if i % 10 == 9 else "") for i in range(100))
    n_words = len(words.split())
    ex = RationaleExample("doc", words, "positive", [i % 2 for i in range(n_words)])
    parts = windows([ex], max_words=25)
    assert all(len(p.words) <= 25 for p in parts)
    assert " ".join(p.text for p in parts) == ex.text  # nothing lost, nothing repeated
    assert sum((p.rationale for p in parts), []) == ex.rationale
    assert all(p.words[-1] == "." for p in parts[:-1])  # windows end at sentence ends
    assert parts[1].id == "doc#w1" and parts[1].meta["word_offset"] == len(parts[0].words)
    assert len(windows([ex], max_words=25, strategy="first")) == 1
    assert windows([ex], strategy="none") == [ex]
    # a token budget (e.g. 512 for the model) shrinks windows until each fits
    fit = windows([ex], max_words=1000, count_tokens=lambda t: 3 * len(t.split()), max_tokens=60)
    assert all(3 * len(p.text.split()) <= 60 for p in fit) and len(fit) > 1
    with pytest.raises(UserError):
        windows([ex], strategy="slide")


# ----------------------------------------------------------------------------- the real files
@pytest.mark.data
def test_real_sst_files(data_dir) -> None:
    sst2 = load_dataset("sst2", limit=5)
    assert (
        len(sst2) == 5 and sst2[0].label in ("positive", "negative") and sst2[0].rationale is None
    )
    trees = load_dataset("sst-trees", limit=200)
    assert all(len(e.rationale) == len(e.words) for e in trees)
    assert sum(sum(e.rationale) for e in trees) > 0
    rat = load_dataset("sst-rationales")
    assert len(rat) == 263 and all(e.meta["annotators"] == 6 for e in rat)
    assert all(len(e.rationale) == len(e.words) for e in rat)
    groups = load_dataset("sst-rationales", group="*", limit=3)
    assert {e.group for e in groups} == {"BO", "BY", "LO", "LY", "WO", "WY"}


@pytest.mark.data
def test_real_eraser_files(data_dir) -> None:
    movies = load_dataset("eraser-movies", limit=3)
    assert all(len(e.rationale) == len(e.words) and sum(e.rationale) > 0 for e in movies)
    assert max(len(e.words) for e in movies) > 300
    parts = windows(movies, max_words=300)
    assert all(len(p.words) <= 300 for p in parts)
    assert sum(sum(p.rationale) for p in parts) == sum(sum(e.rationale) for e in movies)
    hate = load_dataset("hatexplain", limit=50)
    assert {e.label for e in hate} <= {"toxic", "non-toxic"}
    assert all(len(e.rationale) == len(e.words) for e in hate)
