"""The what-if page's API (``/api/whatif/*``) with TestClient, on the lexicon classifier (a model
with a closed form, tests/whatif_support.py) and the tiny random LM; every prediction it reports is
checked against an independent ``/api/predict`` call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import api_client, error_of, finished

from explainlm.store import open_store

TEXT = "a dull film with a wonderful , fun plot"


@pytest.fixture(scope="module")
def client(lexicon_bert_dir: Path, tiny_llama_dir: Path) -> Any:
    with api_client(("lexicon", lexicon_bert_dir), ("tiny-llama", tiny_llama_dir)) as c:
        yield c


def predicted(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    """Labels and probabilities from ``POST /api/predict`` (independent of the what-if code)."""
    d = client.post("/api/predict", json={"texts": texts, "model": "lexicon"}).json()
    return d["predictions"]


def test_edit_predicts_the_edited_text_next_to_the_original(client: TestClient) -> None:
    edits = [{"index": 1, "replacement": ""}, {"index": 5, "replacement": "awful"}]
    d = client.post("/api/whatif/edit", json={"text": TEXT, "model": "lexicon", "edits": edits})
    d = d.json()
    assert d["edited_text"] == "a film with a awful , fun plot"
    before, after = predicted(client, [TEXT, d["edited_text"]])
    assert d["before"]["label"] == before["label"] == "positive"
    assert d["after"]["label"] == after["label"] == "negative" and d["changed"]
    for label in ("negative", "positive"):
        assert d["after"]["probs"][label] == pytest.approx(after["probs"][label], abs=1e-6)
        assert d["delta"][label] == pytest.approx(
            after["probs"][label] - before["probs"][label], abs=1e-6
        )
    assert [op["op"] for op in d["diff"]] == ["equal", "delete", "equal", "replace", "equal"]
    assert d["run_id"] is None  # page requests are not recorded
    assert [r.command for r in open_store().list_runs()] == ["predict"]


def test_the_page_explanation_units_are_the_edit_words(client: TestClient) -> None:
    """The page colours the clickable words with the explanation: same units, same order."""
    words = client.post("/api/whatif/edit", json={"text": TEXT, "edited_text": TEXT}).json()
    exp = client.post(
        "/api/explain", json={"text": TEXT, "methods": ["auto"], "granularity": "word"}
    ).json()["explanations"][0]
    assert exp["units"] == [w["word"] for w in words["words"]]
    assert exp["verdict"]["status"] == "passes" and exp["auto"]["chosen"]
    assert [w["editable"] for w in words["words"]] == [True] * 6 + [False, True, True]


def test_edit_bad_input_is_one_line(client: TestClient) -> None:
    assert "text has 9 words" in error_of(
        client.post("/api/whatif/edit", json={"text": TEXT, "edits": [{"index": 9}]}), 400
    )
    error_of(client.post("/api/whatif/edit", json={"text": TEXT}), 400)  # neither edits nor text
    long = {"index": 1, "replacement": "x" * 101}
    assert "longer than 100" in error_of(
        client.post("/api/whatif/edit", json={"text": TEXT, "edits": [long]}), 400
    )
    r = client.post("/api/whatif/edit", json={"text": " ", "edited_text": "a"})
    assert "empty" in error_of(r, 400)
    r = client.post("/api/whatif/edit", json={"text": TEXT, "edited_text": "a", "model": "/m"})
    error_of(r, 403)
    r = client.post("/api/whatif/edit", json={"text": TEXT, "edited_text": "a", "model": "nope"})
    assert "unknown model 'nope'" in error_of(r, 400)


def test_counterfactual_job_really_flips_the_prediction(client: TestClient) -> None:
    body = {"text": TEXT, "model": "lexicon", "sources": ["delete"], "quality": False, "n": 2}
    d = finished(client, client.post("/api/whatif/counterfactual", json=body))
    assert d["status"] == "finished", d["error"]
    (res,) = d["result"]["results"]
    assert res["success"] and res["label"] == "positive"
    cfs = res["counterfactuals"]
    assert cfs and all(c["label"] != res["label"] for c in cfs)
    for c, p in zip(cfs, predicted(client, [c["text"] for c in cfs]), strict=True):
        assert p["label"] == c["label"]  # the reported label is the model's
    assert cfs[0]["n_edits"] == 2  # one negative word against two positive: two deletions
    run = open_store().get_run(d["result"]["run_id"])
    assert run.command == "counterfactual" and run.params["source"] == "server"


def test_the_search_lm_is_a_configured_causal_lm(client: TestClient, lexicon_bert_dir) -> None:
    body = {"text": TEXT, "sources": ["llm", "delete"], "quality": False, "max_queries": 60}
    d = finished(client, client.post("/api/whatif/counterfactual", json=body))
    assert d["status"] == "finished", d["error"]
    assert open_store().get_run(d["result"]["run_id"]).params["lm"] == "tiny-llama"
    with api_client(("lexicon", lexicon_bert_dir)) as alone:
        r = alone.post("/api/whatif/counterfactual", json={"text": TEXT})
        assert "causal language model" in error_of(r, 400)


def test_anchor_job(client: TestClient) -> None:
    text = "a wonderful story about a family"
    body = {"text": text, "threshold": 0.9}
    d = finished(client, client.post("/api/whatif/anchor", json=body))
    (r,) = d["result"]["results"]
    assert r["rule"] == "IF 'wonderful' THEN positive" and r["indices"] == [1]
    assert r["precision_low"] <= r["precision"] <= r["precision_high"] and r["meets_threshold"]
    assert r["label"] == predicted(client, [text])[0]["label"]
    kept = [t.replace("[UNK]", "") for t in r["examples_kept"]]
    assert all(p["label"] == "positive" for p in predicted(client, kept))


def test_search_jobs_cancel(client: TestClient) -> None:
    lock = client.app.state.registry.lock("lexicon")
    lock.acquire()  # the job starts, then waits for the model
    try:
        r = client.post("/api/whatif/anchor", json={"text": "a wonderful story about a family"})
        job_id = r.json()["job_id"]
        while client.get(f"/api/jobs/{job_id}").json()["status"] == "queued":
            time.sleep(0.02)
        assert client.delete(f"/api/jobs/{job_id}").status_code == 200
    finally:
        lock.release()
    assert finished(client, r)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("counterfactual", {"text": "great"}, 400, "one word"),
        ("counterfactual", {"text": TEXT, "max_queries": 10**6}, 400, "at most 5000"),
        ("counterfactual", {"text": TEXT, "embeddings": "/x"}, 400, "built-in minilm-l6"),
        ("counterfactual", {"text": TEXT, "input": "/etc/passwd"}, 403, "input"),
        ("counterfactual", {"text": TEXT, "sources": ["magic"]}, 400, "unknown candidate"),
        ("counterfactual", {"text": TEXT, "lm": "nowhere"}, 400, "unknown model"),
        ("counterfactual", {"text": TEXT, "resume": "x"}, 400, "CLI"),
        ("anchor", {"text": TEXT, "threshold": 2}, 422, "threshold"),
        ("anchor", {"text": TEXT, "perturbation": "bogus"}, 400, "unknown perturbation"),
        ("anchor", {"text": TEXT, "validation_samples": 10**5}, 400, "at most 5000"),
    ],
)
def test_search_bad_input_before_any_job(client, path, body, status, message) -> None:
    assert message in error_of(client.post(f"/api/whatif/{path}", json=body), status)
