"""``explainlm counterfactual|attack|anchor`` and the what-if service, in-process on small models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explainlm.cli.app import main
from explainlm.errors import UserError
from explainlm.progress import Cancelled, Progress
from explainlm.services.base import ServiceContext, build_request
from explainlm.services.whatif import (
    AnchorRequest,
    CounterfactualRequest,
    EditRequest,
    PredictExplainRequest,
    run,
)
from explainlm.store import open_store


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: object) -> dict:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    return json.loads(out)


def user_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model load fails the test: errors must come before a model is touched."""
    from explainlm.models.wrapper import ModelWrapper

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(ModelWrapper, "from_source", classmethod(refuse))


def predict_labels(capsys: pytest.CaptureFixture[str], model: Path, texts: list[str]) -> list[str]:
    """Labels from a separate ``explainlm predict`` call (independent of the what-if code)."""
    doc = cli_json(capsys, "predict", *texts, "--model", model)
    return [p["label"] for p in doc["predictions"]]


# ------------------------------------------------------------------------------ commands
def test_counterfactual_json_flips_every_reported_text(
    capsys, lexicon_bert_dir: Path, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    texts = ["the film was dull and the plot was boring .", "i thought the acting was bad"]
    html = tmp_path / "cf.html"
    doc = cli_json(
        capsys, "counterfactual", *texts, "--model", lexicon_bert_dir, "--lm", tiny_llama_dir,
        "--n", 2, "--max-queries", 200, "--html", html,
    )  # fmt: skip
    assert doc["kind"] == "counterfactual" and len(doc["results"]) == 2
    cfs = [c for r in doc["results"] for c in r["counterfactuals"]]
    assert cfs and all(r["success"] for r in doc["results"])
    labels = predict_labels(capsys, lexicon_bert_dir, [c["text"] for c in cfs])
    assert labels == [c["label"] for c in cfs]
    originals = {r["text"]: r["label"] for r in doc["results"]}
    for r in doc["results"]:
        for c in r["counterfactuals"]:
            assert c["label"] != originals[r["text"]]
            assert c["marked"].count("[[") == c["n_edits"]
    assert doc["summary"]["success_rate"]["mean"] == 1.0
    page = html.read_text()
    assert "wi-del" in page and "wi-ins" in page and "Summary" in page
    runs = open_store().list_runs(command="counterfactual")
    assert runs and runs[0].run_id == doc["run_id"] and runs[0].status == "finished"
    assert len(open_store().get_items(doc["run_id"], "counterfactual")) == 2


def test_attack_and_anchor_json(capsys, lexicon_bert_dir: Path, tmp_path: Path) -> None:
    doc = cli_json(
        capsys, "attack", "i thought the acting was bad", "a dull , boring film", "--model",
        lexicon_bert_dir, "--kind", "char", "--max-queries", 40, "--min-similarity", 0.5,
    )  # fmt: skip
    assert {r["status"] for r in doc["results"]} <= {"succeeded", "failed"}
    for r in doc["results"]:
        assert r["queries"] <= 40
        if r["status"] == "succeeded":
            assert predict_labels(capsys, lexicon_bert_dir, [r["adversarial"]]) == [r["new_label"]]
            assert r["new_label"] != r["label"]
    html = tmp_path / "a.html"
    doc = cli_json(
        capsys, "anchor", "a wonderful story about a family", "--model", lexicon_bert_dir,
        "--threshold", 0.9, "--html", html,
    )  # fmt: skip
    (r,) = doc["results"]
    assert r["rule"] == "IF 'wonderful' THEN positive" and r["meets_threshold"]
    assert r["precision_low"] <= r["precision"] <= r["precision_high"]
    assert 'class="wi-anchor">wonderful<' in html.read_text()


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_one_line_before_any_model_loads(
    capsys, no_model_loads: None, lexicon_bert_dir: Path, tmp_path: Path
) -> None:
    assert "one word" in user_error(capsys, "counterfactual", "great", "--model", lexicon_bert_dir)
    assert "one word" in user_error(capsys, "anchor", "a fine film", "wow", "--model", "nowhere")
    msg = user_error(capsys, "attack", "a fine film", "--max-queries", 0)
    assert "query budget must be at least 1, got 0" in msg
    msg = user_error(capsys, "anchor", "a fine film", "--max-samples", 0)
    assert "sample budget must be at least 1, got 0" in msg
    msg = user_error(
        capsys, "counterfactual", "a fine film", "--model", lexicon_bert_dir, "--target", "neutral"
    )
    assert "unknown target label 'neutral'" in msg and "negative, positive" in msg
    msg = user_error(
        capsys, "counterfactual", "a fine film", "--target", "happy", "--labels", "sad,glad"
    )
    assert "unknown target label 'happy'" in msg
    assert "unknown attack" in user_error(capsys, "attack", "a fine film", "--kind", "emoji")
    assert "no text given" in user_error(capsys, "anchor")
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\ngood film\t1\noops\n")
    assert "bad.tsv, line 3" in user_error(
        capsys,
        "counterfactual",
        "-i",
        bad,
        "--text-column",
        "sentence",
        "--model",
        lexicon_bert_dir,
    )


def test_text_already_at_the_target_is_a_clear_error(capsys, lexicon_bert_dir: Path) -> None:
    msg = user_error(
        capsys, "counterfactual", "a wonderful film", "--model", lexicon_bert_dir,
        "--target", "positive", "--sources", "delete",
    )  # fmt: skip
    assert "already predicted 'positive'" in msg


# ------------------------------------------------------------------------ dataset + resume
def test_dataset_mode_resumes_an_interrupted_run(
    capsys, monkeypatch: pytest.MonkeyPatch, lexicon_bert_dir: Path, tmp_path: Path
) -> None:
    from explainlm.whatif.counterfactuals import CounterfactualGenerator

    data = tmp_path / "d.tsv"
    rows = [
        ("the film was dull and the plot was boring .", 0),
        ("i thought the acting was bad", 0),
        ("great", 1),
        ("a wonderful , touching story .", 1),
        ("a dull and tedious affair", 0),
    ]
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    calls: list[list[str]] = []
    original = CounterfactualGenerator.generate

    def flaky(self, texts, progress=None, skip=None):
        calls.append(list(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, texts, progress, skip)

    monkeypatch.setattr(CounterfactualGenerator, "generate", flaky)
    args = ["counterfactual", "-i", data, "--text-column", "sentence", "--model", lexicon_bert_dir,
            "--sources", "embedding,delete", "--no-quality", "--chunk-size", 2]  # fmt: skip
    code, _, _ = cli(capsys, *args)
    assert code == 130
    (rec,) = open_store().list_runs(command="counterfactual")
    assert rec.status == "interrupted"
    assert sorted(open_store().get_items(rec.run_id, "counterfactual")) == ["000000", "000001"]
    calls.clear()
    monkeypatch.setattr(CounterfactualGenerator, "generate", original)
    doc = cli_json(capsys, "counterfactual", "--resume", rec.run_id[:12])
    assert doc["run_id"] == rec.run_id and len(doc["results"]) == 5
    assert [r["text"] for r in doc["results"]] == [t for t, _ in rows]
    assert doc["results"][2]["skipped"].startswith("has one word")
    assert doc["summary"]["n_searched"] == 4
    assert open_store().get_run(rec.run_id).status == "finished"
    exported = open_store().export(rec.run_id, "json", tmp_path / "run.json")[0]
    assert len(json.loads(exported.read_text())["items"]) == 5


def test_a_finished_run_resumed_with_evaluate_builds_its_contrast_set(
    capsys, monkeypatch: pytest.MonkeyPatch, lexicon_bert_dir: Path, tmp_path: Path
) -> None:
    from explainlm.whatif.counterfactuals import CounterfactualGenerator

    data = tmp_path / "d.tsv"
    rows = [
        ("the film was dull and the plot was boring .", "negative"),
        ("a wonderful , touching story .", "positive"),
        ("i thought the acting was bad", "positive"),  # a gold label the model gets wrong
    ]
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    args = ["counterfactual", "-i", data, "--text-column", "sentence", "--label-column", "label",
            "--model", lexicon_bert_dir, "--sources", "embedding,delete", "--no-quality"]  # fmt: skip
    first = cli_json(capsys, *args)
    assert "contrast_sets" not in first

    def no_search(*a: object, **k: object) -> None:
        raise AssertionError("a finished run searched again")

    monkeypatch.setattr(CounterfactualGenerator, "generate", no_search)
    report = tmp_path / "cf.html"
    again = cli_json(capsys, "counterfactual", "--resume", first["run_id"],
                     "--evaluate", lexicon_bert_dir, "--html", report)  # fmt: skip
    html = report.read_text()
    assert "Contrast sets" in html and "by construction" in html
    assert again["run_id"] == first["run_id"] and again["results"] == first["results"]
    (cs,) = again["contrast_sets"]
    # independently: the editor's labels from `predict`, its counterfactuals as the contrast set
    predicted = predict_labels(capsys, lexicon_bert_dir, [t for t, _ in rows])
    kept = [i for i, (r, (_, gold)) in enumerate(zip(first["results"], rows, strict=True))
            if r["label"] == gold and r["counterfactuals"]]  # fmt: skip
    assert kept and cs["n_originals"] == len(kept)
    assert cs["n_contrast"] == sum(len(first["results"][i]["counterfactuals"]) for i in kept)
    expected_acc = sum(predicted[i] == rows[i][1] for i in kept) / len(kept)
    assert cs["original_accuracy"]["mean"] == pytest.approx(expected_acc)
    assert cs["contrast_accuracy"]["mean"] == 1.0  # the editor, by construction
    assert [e["predicted"] for e in cs["originals"]] == [predicted[i] for i in kept]
    assert all(e["predicted"] == e["label"] for e in cs["examples"])
    rec = open_store().get_run(first["run_id"])
    assert rec.status == "finished" and rec.params["evaluate"] == [str(lexicon_bert_dir)]
    assert rec.params["request"]["evaluate"] == [str(lexicon_bert_dir)]
    assert (
        open_store().get_run(first["run_id"]).summary["contrast_sets"][0]["n_contrast"]
        == (cs["n_contrast"])
    )


# ------------------------------------------------------------------------------- service
def test_page_requests_predict_explain_and_edit(lexicon_bert_dir: Path) -> None:
    from whatif_support import lexicon_prob

    from explainlm.models import load_model

    clf = load_model(str(lexicon_bert_dir))
    text = "a wonderful , fun film with a dull plot"
    res = run(build_request(PredictExplainRequest, model=str(lexicon_bert_dir), text=text))
    doc = res.to_json_doc()
    assert doc["prediction"]["label"] == clf.predict([text])[0].label == "positive"
    tok = clf.wrapper.tokenizer

    def p_label(t: str) -> float:
        p = lexicon_prob(tok.convert_ids_to_tokens(tok(t)["input_ids"]))
        return p if doc["prediction"]["label"] == "positive" else 1 - p

    from explainlm.whatif.text import WordText

    wt = WordText.of(text)
    for w in doc["words"]:  # occlusion = p(label) − p(label without the word), in closed form
        assert w["score"] == pytest.approx(
            p_label(text) - p_label(wt.replace({w["index"]: ""})), abs=1e-5
        )
    assert set(doc["faithfulness"]) == {"method", "random"} and isinstance(doc["trusted"], bool)
    edit = run(
        build_request(
            EditRequest,
            model=str(lexicon_bert_dir),
            text=text,
            edits=[{"index": 1, "replacement": "awful"}],
        )
    )
    d = edit.to_json_doc()
    assert d["edited_text"] == "a awful , fun film with a dull plot"
    assert d["after"] == {
        "label": "negative",
        "probs": pytest.approx(clf.predict([d["edited_text"]])[0].probs),
    }
    assert d["changed"] and [op["op"] for op in d["diff"]] == ["equal", "replace", "equal"]
    typed = run(
        build_request(
            EditRequest, model=str(lexicon_bert_dir), text=text, edited_text="a dull film"
        )
    )
    assert typed.to_json_doc()["after"]["label"] == "negative"
    with pytest.raises(UserError, match="give either edits or edited_text"):
        build_request(EditRequest, text=text)
    with pytest.raises(UserError, match="the text has 9 words"):
        run(
            build_request(EditRequest, model=str(lexicon_bert_dir), text=text, edits=[{"index": 9}])
        )


def test_find_buttons_are_cancellable(lexicon_bert_dir: Path) -> None:
    class CancelWhenSearching(Progress):
        def start(self, stage, total=None, *, estimate_s=None):
            if stage.startswith("searching"):
                self.cancel()
            super().start(stage, total, estimate_s=estimate_s)

    store = open_store()
    ctx = ServiceContext(store=store, progress=CancelWhenSearching())
    for req in (
        build_request(
            CounterfactualRequest,
            model=str(lexicon_bert_dir),
            texts=["a dull , boring film"],
            sources=["delete"],
            quality=False,
        ),
        build_request(AnchorRequest, model=str(lexicon_bert_dir), texts=["a dull , boring film"]),
    ):
        with pytest.raises(Cancelled):
            run(req, ctx)
    assert [r.status for r in store.list_runs()] == ["cancelled", "cancelled"]
