"""End-to-end tests on the two built-in real models (marked ``real``; they run in CI too)."""

from __future__ import annotations

import json

import pytest

from explainlm.cli.app import main
from explainlm.datasets import read_table
from explainlm.errors import UserError
from explainlm.models import ModelWrapper, load_model, make_task
from explainlm.models.sources import META_FILE, resolve_source

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def smollm() -> ModelWrapper:
    return ModelWrapper.load("smollm2-135m", device="cpu")


def test_gguf_cache_is_built_once_and_reused(smollm_dir) -> None:
    meta = smollm_dir / META_FILE
    weights = smollm_dir / "model.safetensors"
    before = (meta.stat().st_mtime_ns, weights.stat().st_mtime_ns)
    again = resolve_source("smollm2-135m")
    assert again.path == smollm_dir and again.kind == "causal_lm" and again.chat
    assert (meta.stat().st_mtime_ns, weights.stat().st_mtime_ns) == before


def test_cli_predict_sentiment_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "predict",
            "This movie was wonderful, touching and funny.",
            "An awful, boring film: a complete waste of time, with terrible acting.",
            "--model",
            "smollm2-135m",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "smollm2-135m" and doc["run_id"]
    assert [p["label"] for p in doc["predictions"]] == ["positive", "negative"]


@pytest.mark.data
def test_zero_shot_accuracy_on_sst2_sample(smollm, data_dir) -> None:
    table = read_table(data_dir / "sst2/test.tsv", text_column="sentence", label_column="label")
    texts, gold = table.texts[:120], table.labels[:120]
    preds = make_task(smollm, "zero_shot").predict(texts)
    acc = sum((p.label == "positive") == (g == "1") for p, g in zip(preds, gold, strict=True)) / 120
    assert acc >= 0.7  # full test set: see benchmarks/RESULTS.md


def test_generation_knows_a_fact(smollm) -> None:
    gen = make_task(smollm, "generator", chat=False)
    g = gen.generate(["The capital of France is"], max_new_tokens=4)[0]
    assert "Paris" in g.text
    forced = gen.score([g.prompt], [g.token_ids])[0]
    assert forced.logprobs == pytest.approx(g.logprobs, abs=1e-3)


def test_chat_generation_answers(smollm) -> None:
    gen = make_task(smollm, "generator", chat=True)
    g = gen.generate(["What is the capital of France? Answer in one word."], max_new_tokens=6)[0]
    assert "Paris" in g.text
    assert g.prompt_encoding.sequence.startswith("<|im_start|>system")


def test_minilm_encoder_loads_and_needs_training() -> None:
    w = ModelWrapper.load("minilm-l6", device="cpu")
    assert w.kind == "encoder" and w.padding_side == "right"
    enc = w.encode(["Unbelievably good."])[0]
    assert enc.tokens[0] == "[CLS]" and enc.words == ["Unbelievably", "good", "."]
    with pytest.raises(UserError, match="explainlm train"):
        make_task(w)
    with pytest.raises(UserError, match="explainlm train"):
        load_model("minilm-l6")


def test_demo_writes_report(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["demo", "--output", str(out)]) == 0
    html = out.read_text()
    assert "wonderful, touching and funny" in html and "positive" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    assert str(out) in capsys.readouterr().out
    from explainlm.store import open_store

    run = open_store().list_runs(command="demo")[0]  # the isolated store of this test
    assert run.status == "finished" and run.summary["report"] == str(out)
    # auto, the methods that pass the model's calibration, and one failing method, labelled
    shown = {e.method for e in open_store().load_explanations(run.run_id)}
    (cal_run,) = open_store().list_runs(command="calibrate")
    cal = {r["method"]: r for r in cal_run.summary["calibration"]["methods"]}
    failing = run.summary["failing_shown"]
    assert failing == ["integrated_gradients"] and not cal["integrated_gradients"]["passes"]
    passing = shown - {"auto", *failing}
    assert "auto" in shown and passing and all(cal[m]["passes"] for m in passing)
    assert "shown below so you can see why the check matters" in html


def test_explanations_on_the_real_llm(smollm) -> None:
    from explainlm.attribution import explain

    clf = make_task(smollm, "zero_shot")
    text = "a truly wonderful film"
    res = explain(
        [text],
        clf,
        ["occlusion", "kernel_shap", "integrated_gradients"],
        method_params={"integrated_gradients": {"steps": 32}},
    )
    occ, shap_, ig = res
    assert occ.predicted == "positive" and occ.words == text.split(" ")
    p_full = clf.predict([text])[0].probs["positive"]
    reduced = [" ".join(w for k, w in enumerate(text.split(" ")) if k != j) for j in range(4)]
    expected = [p_full - p.probs["positive"] for p in clf.predict(reduced)]
    assert occ.word_scores == pytest.approx(expected, abs=1e-4)
    # exact Shapley values add up to f(x) − f(∅); the sentiment word carries the most
    f_empty = float(clf.scores(clf.encode([""], allow_empty=True)).softmax(-1)[0, 1])
    assert sum(shap_.word_scores) == pytest.approx(shap_.target_value - f_empty, abs=1e-4)
    assert shap_.top(1)[0][0] == "wonderful"
    assert ig.delta is not None and len(ig.token_scores) == len(ig.tokens)
