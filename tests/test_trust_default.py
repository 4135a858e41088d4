"""Trust by default (issue 12): ``method="auto"`` and the faithfulness check on every output path.

The known model is the lexicon BERT of ``tests/whatif_support.py``: its attention is uniform by
construction, so ``attention`` ranks words by position only and must never be chosen, while
occlusion recovers the lexicon exactly.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from whatif_support import lexicon_score

from explainlm import load_model
from explainlm.attribution import explain
from explainlm.cli.app import main
from explainlm.errors import UserError
from explainlm.methods.calibration import CALIBRATION_TEXTS, bootstrap_ci, forget, model_key
from explainlm.report.trust import verdict
from explainlm.server import ModelSpec, ServerConfig, create_app
from explainlm.services import ExplainRequest, build_request
from explainlm.services.base import ServiceContext
from explainlm.services.calibration import ensure_calibration, stored_calibration
from explainlm.store import open_store

TEXTS = ["The acting was dull but the music was wonderful and fun.", "A boring film about nothing"]
POOL = {"candidates": "attention,occlusion"}


@pytest.fixture(scope="module")
def lexicon(lexicon_bert_dir: Path):
    return load_model(str(lexicon_bert_dir))


@pytest.fixture(autouse=True)
def _fresh_calibrations():
    forget()
    yield
    forget()


def test_auto_never_picks_constant_attention(lexicon) -> None:
    res = explain(TEXTS, lexicon, ["auto"], method_params={"auto": {**POOL, "race": 2}})
    for e in res:
        assert e.method == "auto" and e.auto["chosen"] == "occlusion"
        # occlusion on this model is the lexicon: the sentiment words, with their signs
        signs = {w: np.sign(s) for w, s in zip(e.words, e.word_scores, strict=True)}
        for w, s in signs.items():
            if lexicon_score(w) and e.label == "positive":
                assert s == lexicon_score(w)
        assert "attention" in e.auto["reason"] and "not faithful for this model" in e.auto["reason"]
    # the calibration's verdict, recomputed independently from the two methods' checks
    direct = explain(list(CALIBRATION_TEXTS), lexicon, ["attention", "occlusion"])
    for name in ("attention", "occlusion"):
        gains = [
            e.check["comprehensiveness"] - e.check["random"]["comprehensiveness"]
            for e in direct.by_method(name)
        ]
        ci = bootstrap_ci(gains)
        row = next(r for r in res[0].auto["left_out"] + res[0].auto["candidates"]
                   if r["method"] == name)  # fmt: skip
        cal = row["calibration"]
        assert cal["gain_ci"] == pytest.approx(ci) and cal["passes"] == (ci[0] > 0)
        assert cal["passes"] == (name == "occlusion")
    # the model's attention is uniform: every token gets 1/n, so its ranking is positional
    att = direct.by_method("attention")[0]
    np.testing.assert_allclose(att.token_scores, 1 / len(att.tokens), rtol=1e-5)


def test_auto_honours_the_forbidden_list(lexicon) -> None:
    res = explain(TEXTS[:1], lexicon, ["auto"],
                  method_params={"auto": {"candidates": "occlusion,grad_x_input", "forbid": "occlusion"}})  # fmt: skip
    assert res[0].auto["chosen"] == "grad_x_input"
    assert all(c["method"] != "occlusion" for c in res[0].auto["candidates"])
    with pytest.raises(UserError, match="no candidate method is left"):
        explain(TEXTS[:1], lexicon, ["auto"],
                method_params={"auto": {"candidates": "occlusion", "forbid": "occlusion"}})  # fmt: skip
    with pytest.raises(UserError, match="both requested and forbidden"):
        build_request(ExplainRequest, texts=["x"], methods=["occlusion"], forbid=["occlusion"])
    with pytest.raises(UserError, match="known: "):
        build_request(ExplainRequest, texts=["x"], forbid=["occlusionn"])


def test_when_no_method_passes_auto_says_so_and_shows_the_best(lexicon) -> None:
    (e,) = explain(
        TEXTS[:1], lexicon, ["auto"], method_params={"auto": {"candidates": "attention"}}
    )
    assert e.auto["chosen"] == "attention"
    assert "no candidate method beat a random ranking" in e.auto["warning"]
    assert any("do not rely on it" in w for w in e.warnings)
    assert "Warning:" in e.auto["reason"]


def test_one_word_texts(lexicon) -> None:
    (e,) = explain(["great"], lexicon, ["auto"], method_params={"auto": POOL})
    assert e.auto["rule"].startswith("one unit") and e.auto["chosen"] == "occlusion"
    assert verdict(e.check, e.target, 1)["status"] == "undecided"
    from explainlm.report.heatmap import summary

    text = summary(e)
    assert "single unit" in text and "mainly because" not in text


def test_failing_method_summary_never_claims_a_reason(lexicon) -> None:
    from explainlm.report.heatmap import summary

    for e in explain(TEXTS, lexicon, ["attention", "occlusion"]):
        v = verdict(e.check, e.target, len(e.feature_scores()))
        if v["status"] == "fails":
            assert "failed the faithfulness check" in summary(e)
            assert "because of" not in summary(e)
        else:
            assert "passes the faithfulness check" in summary(e)


def test_calibration_is_stored_keyed_by_model_and_reused(lexicon, lexicon_bert_dir) -> None:
    ctx = ServiceContext(store=open_store())
    first = ensure_calibration(ctx, str(lexicon_bert_dir), lexicon)
    assert stored_calibration(ctx.store, model_key(lexicon)).to_dict() == first.to_dict()
    forget()  # a new process: found in the store, not recomputed
    again = ensure_calibration(ctx, str(lexicon_bert_dir), lexicon)
    assert again.created == first.created
    runs = [r for r in ctx.store.list_runs(command="calibrate")]
    assert len(runs) == 1
    ensure_calibration(ctx, str(lexicon_bert_dir), lexicon, refresh=True)
    assert len(ctx.store.list_runs(command="calibrate")) == 2


def _cli(args: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


def test_no_output_path_shows_an_attribution_without_its_check(
    lexicon_bert_dir: Path, tmp_path: Path
) -> None:
    model = str(lexicon_bert_dir)
    # JSON (CLI) and the store, then the stored run reloaded, its JSON shape and its HTML export
    doc = json.loads(_cli(["explain", TEXTS[0], "-m", model, "--method", "occlusion",
                           "--method", "attention", "--json"]))  # fmt: skip
    assert all(e["check"] and e["verdict"]["status"] in ("passes", "fails")
               for e in doc["explanations"])  # fmt: skip
    store = open_store()
    assert all(e.check for e in store.load_explanations(doc["run_id"]))
    from explainlm.services.runs import html_report, results_doc

    rec = store.get_run(doc["run_id"])
    assert all(e["check"] for e in results_doc(store, rec)["explanations"])
    assert html_report(store, rec).count('class="verdict ') >= 2
    # terminal
    text = _cli(["explain", TEXTS[0], "-m", model, "--method", "occlusion"])
    assert "faithfulness check" in re.sub(r"\s+", " ", text) and "comprehensiveness" in text
    # HTML report
    html = tmp_path / "r.html"
    _cli(["explain", TEXTS[0], "-m", model, "--method", "occlusion", "--html", str(html)])
    assert "passes the faithfulness check" in html.read_text(encoding="utf-8")
    # web API (and its stored run)
    with TestClient(
        create_app(ServerConfig(models=[ModelSpec("lex", model)])), base_url="http://localhost"
    ) as client:
        d = client.post("/api/explain", json={"text": TEXTS[0], "methods": ["occlusion"]}).json()
        assert d["explanations"][0]["check"] and d["explanations"][0]["verdict"]["status"]
        run = client.get(f"/api/runs/{d['run_id']}").json()
        assert run["explanations"][0]["check"]
        off = client.post("/api/explain", json={"text": TEXTS[0], "methods": ["occlusion"],
                                                "check": False}).json()  # fmt: skip
        assert off["explanations"][0]["check"] is None
        assert off["explanations"][0]["verdict"]["status"] == "unchecked"
    # turned off on purpose: --no-check; then every view says it was not checked
    doc = json.loads(_cli(["explain", TEXTS[0], "-m", model, "--method", "occlusion",
                           "--no-check", "--json"]))  # fmt: skip
    assert doc["explanations"][0]["check"] is None
    text = _cli(["explain", TEXTS[0], "-m", model, "--method", "occlusion", "--no-check"])
    assert "faithfulness not checked" in text


def test_generation_paths_carry_the_check(tiny_llama_dir: Path) -> None:
    model = str(tiny_llama_dir)
    doc = json.loads(_cli(["generate", "The capital of France is", "-m", model,
                           "--max-new-tokens", "2", "--json"]))  # fmt: skip
    (a,) = doc["attributions"]
    assert a["method"] == "auto" and a["auto"]["chosen"] in ("occlusion", "integrated_gradients")
    assert a["check"] and a["verdict"]["status"] in ("passes", "fails")
    stored = open_store().get_items(doc["run_id"], "generation")
    assert all(v["check"] for v in stored.values())
    text = _cli(["generate", "The capital of France is", "-m", model, "--max-new-tokens", "2",
                 "--method", "occlusion"])  # fmt: skip
    assert "faithfulness check" in re.sub(r"\s+", " ", text)


def test_tiny_effects_read_as_weak_and_look_faint() -> None:
    import re as _re

    from explainlm.explanation import Explanation
    from explainlm.report.heatmap import heat_spans, summary

    words = "a b c d e f g h i j".split()
    e = Explanation(text=" ".join(words), method="occlusion", target="prob", label="positive",
                    predicted="positive", probs={"negative": 0.01, "positive": 0.99},
                    words=words, word_scores=[0.02] + [0.001] * 9)  # fmt: skip
    # removing the top 10/20/50% lowers p by 0.01/0.02/0.06; random words: 0.0
    e.check = {"comprehensiveness": 0.03, "comprehensiveness_by_k": [0.01, 0.02, 0.06],
               "k": [1, 2, 5], "random": {"comprehensiveness": 0.0}}  # fmt: skip
    text = summary(e)
    assert text.startswith("Predicted POSITIVE (0.99). Weak evidence") and "0.02" in text
    alphas = [float(a) for a in _re.findall(r"rgba\(220,38,38,([0-9.]+)\)", heat_spans(e))]
    # the strongest unit's alpha is 0.85 × (drop at the top 20% = 0.02) / 0.25, not 0.85
    assert alphas[0] == pytest.approx(0.85 * 0.02 / 0.25, abs=0.005)
    e.check = {**e.check, "comprehensiveness_by_k": [0.2, 0.3, 0.5], "comprehensiveness": 0.33}
    assert [float(a) for a in _re.findall(r"rgba\(220,38,38,([0-9.]+)\)", heat_spans(e))][0] == 0.85


def test_demo_shows_passing_methods_and_one_failing_labelled(
    lexicon_bert_dir: Path, tmp_path: Path
) -> None:
    from explainlm.services import DemoRequest
    from explainlm.services import demo as service

    out = tmp_path / "demo.html"
    res = service.run(DemoRequest(model=str(lexicon_bert_dir), output=str(out)),
                      ServiceContext(store=open_store()))  # fmt: skip
    cal = {r["method"]: r for r in res.calibration["methods"]}
    assert res.failing == ["attention"] and not cal["attention"]["passes"]
    shown = res.methods[1:-1]
    assert res.methods[0] == "auto" and shown and all(cal[m]["passes"] for m in shown)
    html = out.read_text(encoding="utf-8")
    assert "shown below so you can see why the check matters" in html
    assert {e.method for e in res.explanations} == set(res.methods)
