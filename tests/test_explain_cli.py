"""`explainlm explain`, explanation persistence, and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from explainlm.attribution import explain
from explainlm.cli.app import main
from explainlm.explanation import ExplanationSet
from explainlm.models import make_task
from explainlm.report.heatmap import explanations_report, summary
from explainlm.store import open_store

XSS = ["<script>alert(1)</script> great film", "bad <img src=x onerror=alert(1)> movie"]


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_json_schema_and_store(capsys, tiny_bert_dir: Path) -> None:
    code, out, _ = run(
        capsys,
        "explain",
        "a wonderful film",
        "dull and boring",
        "--model",
        tiny_bert_dir,
        "--method",
        "occlusion",
        "--method",
        "integrated_gradients",
        "--param",
        "integrated_gradients.steps=8",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"run_id", "model", "explanations", "agreement"}
    ex = doc["explanations"]
    # two methods per text: their rank agreement, equal to scipy's Spearman ρ
    from scipy.stats import spearmanr

    for a, pair in zip(doc["agreement"], (ex[:2], ex[2:]), strict=True):
        (p,) = a["pairs"]
        want = spearmanr(pair[0]["scores"], pair[1]["scores"]).statistic
        assert (p["a"], p["b"]) == ("occlusion", "integrated_gradients")
        assert p["spearman"] == pytest.approx(want)
    assert [e["method"] for e in ex] == ["occlusion", "integrated_gradients"] * 2
    for e in ex:
        assert {
            "text",
            "method",
            "target",
            "label",
            "probs",
            "granularity",
            "units",
            "scores",
        } <= set(e)
        assert len(e["units"]) == len(e["scores"])
    assert "delta" in ex[1] and "delta" not in ex[0]
    assert ex[0]["units"] == ["a", "wonderful", "film"]
    stored = open_store().load_explanations(doc["run_id"])
    assert [e.word_scores for e in stored] == [e["scores"] for e in ex]


def test_explain_contrast_token_granularity_and_html(
    capsys, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.html"
    code, out, err = run(
        capsys,
        "explain",
        XSS[0],
        XSS[1],
        "--model",
        tiny_bert_dir,
        "--method",
        "grad_x_input",
        "--contrast",
        "positive:negative",
        "--granularity",
        "token",
        "--html",
        report,
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert all(e["target"] == "contrast:positive:negative" for e in doc["explanations"])
    assert doc["explanations"][0]["units"][0] == "[CLS]"
    html = report.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert "http" not in html  # self-contained: no external resources
    assert str(report) in err


def test_explain_terminal_view(capsys, tiny_bert_dir: Path) -> None:
    code, out, _ = run(
        capsys, "explain", "a wonderful film", "--model", tiny_bert_dir, "--method", "occlusion"
    )
    assert code == 0
    assert "a wonderful film" in out and "occlusion" in out and "top:" in out and "Predicted" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "gradcam"], "unknown method"),
        (["--method", "occlusion", "--param", "occlusion.window=3"], "unknown parameter"),
        (["--method", "occlusion", "--param", "lime.n_samples=10"], "not requested"),
        (["--method", "occlusion", "--param", "nodot=1"], "METHOD.NAME=VALUE"),
        (["--method", "occlusion", "--target", "prob:neutral"], "unknown label"),
        (["--method", "occlusion", "--contrast", "positive"], "LABEL:FOIL"),
        (["--method", "occlusion", "--granularity", "paragraph"], "granularity"),
    ],
)
def test_explain_user_errors(capsys, tiny_bert_dir: Path, args: list[str], message: str) -> None:
    code, _, err = run(capsys, "explain", "a film", "--model", tiny_bert_dir, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_explanation_set_save_load_roundtrip(tiny_bert, tmp_path: Path) -> None:
    clf = make_task(tiny_bert)
    res = explain(["a wonderful film", "dull"], clf, ["integrated_gradients", "occlusion"])
    res.save(tmp_path / "e.json")
    back = ExplanationSet.load(tmp_path / "e.json")
    assert [e.to_dict() for e in back] == [e.to_dict() for e in res]
    res.save(tmp_path / "e.parquet")
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert len(frame) == sum(len(e.units) for e in res)
    assert set(frame["method"]) == {"integrated_gradients", "occlusion"}
    res.save(tmp_path / "e.html")
    assert "integrated_gradients" in (tmp_path / "e.html").read_text()
    assert "heat" in res._repr_html_()
    with pytest.raises(Exception, match="unknown file type"):
        res.save(tmp_path / "e.xlsx")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(Exception, match="not an explainlm explanations file"):
        ExplanationSet.load(tmp_path / "bad.json")


def test_summary_sentence(tiny_bert) -> None:
    e = explain(["a wonderful film"], make_task(tiny_bert), ["occlusion"])[0]
    e.word_scores = [0.1, 0.41, -0.15]
    text = summary(e)
    assert text.startswith(f"Predicted {e.predicted.upper()} ({e.probs[e.predicted]:.2f})")
    assert "mainly because of 'wonderful' (+0.41) and 'a' (+0.10)" in text
    other = [lab for lab in e.probs if lab != e.label][0].upper()
    assert f"'film' pushed towards {other} (-0.15)" in text
    page = explanations_report([e])
    assert "wonderful" in page and 'title="+0.4100"' in page
