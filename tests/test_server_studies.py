"""The audit and compare APIs (``/api/audit/*``, ``/api/compare``) with TestClient and the tiny
models: every number checked here is recomputed independently (pandas, ``/api/predict``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import api_client, error_of, finished

from explainlm.store import open_store


@pytest.fixture(scope="module")
def client(tiny_bert_dir: Path, tiny_llama_dir: Path) -> Any:
    with api_client(("tiny-bert", tiny_bert_dir), ("tiny-llama", tiny_llama_dir)) as c:
        yield c


def loans_csv(n: int = 120) -> str:
    rng = random.Random(1)
    rows = ["text,label,approved,sex"]
    for i in range(n):
        sex = "f" if i % 2 else "m"
        approved = "yes" if rng.random() < (0.35 if sex == "f" else 0.6) else "no"
        rows.append(f"applicant {i},{'yes' if rng.random() < 0.5 else 'no'},{approved},{sex}")
    return "\n".join(rows) + "\n"


# -------------------------------------------------------------------------------------- audit
def test_audit_kinds_describe_the_request_models(client: TestClient) -> None:
    kinds = client.get("/api/audit/kinds").json()["kinds"]
    assert set(kinds) == {"fairness", "counterfactual", "lm-bias", "bios"}
    fair = {f["name"]: f for f in kinds["fairness"]["fields"]}
    assert fair["group_columns"]["type"] == "list" and fair["group_columns"]["required"]
    assert fair["data"]["type"] == "data" and "biosbias:test" in fair["data"]["choices"]
    assert fair["correction"]["choices"] == ["holm", "bh", "none"]
    assert fair["n_boot"]["min"] == 100 and fair["n_boot"]["group"] == "statistics"
    assert not {"html", "resume", "upload", "device"} & set(fair)  # server-side only
    lm = {f["name"]: f for f in kinds["lm-bias"]["fields"]}
    assert lm["bias_types"]["when"] == {"field": "benchmark", "values": ["crows-pairs", "pairs"]}
    assert lm["kinds"]["type"] == "multi" and lm["model"]["type"] == "model"


def test_fairness_on_an_uploaded_table(client: TestClient) -> None:
    import io

    import pandas as pd

    content = loans_csv()
    body = {
        "upload": {"name": "loans.csv", "content": content},
        "group_columns": ["sex"],
        "prediction_column": "approved",
        "positive_labels": ["yes"],
        "n_boot": 200,
        "n_perm": 200,
    }
    d = finished(client, client.post("/api/audit/fairness", json=body))
    assert d["status"] == "finished", d["error"]
    doc = d["result"]
    (sex,) = doc["dimensions"]
    rates = {g["group"]: g["metrics"]["selection_rate"]["value"] for g in sex["groups"]}
    frame = pd.read_csv(io.StringIO(content))
    expected = frame.assign(y=frame.approved == "yes").groupby("sex").y.mean().to_dict()
    assert rates == pytest.approx(expected)
    assert doc["model"] is None and doc["conclusions"]
    run = open_store().get_run(doc["run_id"])
    stored = Path(run.params["data"])  # the upload is kept, named by its content's hash
    assert stored.read_text() == content and stored.name.endswith("-loans.csv")
    assert "upload" not in run.params and run.params["limit"] == 200
    html = client.get(f"/api/runs/{doc['run_id']}/export", params={"format": "html"}).text
    assert "disparate impact" in html and "<svg" in html
    shown = client.get(f"/api/runs/{doc['run_id']}").json()
    assert shown["audit"]["dimensions"] == doc["dimensions"]


def test_a_bad_uploaded_table_is_named_as_uploaded(client: TestClient) -> None:
    body = {
        "upload": {"name": "loans.csv", "content": loans_csv()},
        "group_columns": ["gender"],
        "prediction_column": "approved",
    }
    d = finished(client, client.post("/api/audit/fairness", json=body))
    assert d["status"] == "failed" and "gender" in d["error"]
    assert "loans.csv" in d["error"] and "uploads" not in d["error"]


def test_counterfactual_audit_on_eec(client: TestClient) -> None:
    body = {"data": "eec", "limit": 40, "n_boot": 200, "n_perm": 100, "attribution_limit": 4}
    d = finished(client, client.post("/api/audit/counterfactual", json=body))
    assert d["status"] == "finished", d["error"]
    doc = d["result"]
    assert doc["model"] == "tiny-bert" and doc["n_pairs"] == 40  # the server's first model
    worst = doc["worst_pairs"][0]
    pa, pb = client.post("/api/predict", json={"texts": [worst["a"], worst["b"]]}).json()[
        "predictions"
    ]
    label = doc["label"]
    assert worst["gap"] == pytest.approx(pb["probs"][label] - pa["probs"][label], abs=1e-5)


def test_lm_bias_runs_on_the_first_causal_lm(client: TestClient) -> None:
    body = {"benchmark": "crows-pairs", "limit": 12, "n_boot": 200, "n_perm": 100}
    d = finished(client, client.post("/api/audit/lm-bias", json=body))
    assert d["status"] == "finished", d["error"]
    assert d["result"]["model"] == "tiny-llama"
    everything, *types = d["result"]["by_bias_type"]
    assert everything["bias_type"] == "all" and everything["n"] == 12 == sum(r["n"] for r in types)


@pytest.mark.parametrize(
    ("kind", "body", "status", "message"),
    [
        ("fairness", {"data": "/etc/passwd", "group_columns": ["a"], "model": "tiny-bert"}, 403,
         "does not read files"),
        ("fairness", {"group_columns": ["a"], "model": "tiny-bert"}, 400, "or upload a table"),
        ("fairness", {"data": "biosbias", "group_columns": ["a"], "html": "/tmp/x", "model": "tiny-bert"}, 403, "html"),
        ("fairness", {"group_columns": ["a"]}, 400, "--prediction-column"),
        ("counterfactual", {"limit": 10**6}, 400, "at most 2000"),
        ("counterfactual", {"limit": None}, 400, "at most 2000"),
        ("counterfactual", {"n_boot": 50}, 422, "n_boot"),
        ("counterfactual", {"n_boot": 50_000}, 400, "at most 10000"),
        ("counterfactual", {"max_batch_tokens": 10**7}, 400, "max_batch_tokens is 10000000"),
        ("counterfactual", {"swap": "/srv/pairs.csv"}, 400, "gender and race"),
        ("counterfactual", {"model": "nowhere"}, 400, "unknown model"),
        ("counterfactual", {"upload": {"name": "t.exe", "content": "x"}}, 400, ".csv"),
        ("lm-bias", {"benchmark": "pairs"}, 400, "upload a CSV"),
        ("lm-bias", {"benchmark": "bbq", "upload": {"name": "p.csv", "content": "x"}}, 400,
         "only that benchmark"),
        ("lm-bias", {"benchmark": "pairs", "pairs_file": "/etc/passwd"}, 403, "pairs_file"),
        ("lm-bias", {"benchmark": "nope"}, 422, "benchmark"),
        ("lm-bias", {"benchmark": "bold", "max_new_tokens": 200}, 400, "at most 64"),
        ("lm-bias", {"benchmark": "bbq", "resume": "x"}, 400, "CLI"),
    ],
)  # fmt: skip
def test_audit_bad_input_is_one_line_before_any_job(client, kind, body, status, message) -> None:
    assert message in error_of(client.post(f"/api/audit/{kind}", json=body), status)
    assert client.get("/api/limits").json()["jobs"]["queued"] == 0


# ------------------------------------------------------------------------------------ compare
def test_compare_job_list_and_report(client: TestClient) -> None:
    from explainlm.datasets import load_dataset

    body = {
        "variants": ["rtn8"],
        "dataset": "sst2",
        "limit": 4,
        "methods": ["occlusion"],
        "metrics": ["comprehensiveness"],
        "rounds": 1,
        "timing_texts": 2,
    }
    d = finished(client, client.post("/api/compare", json=body))
    assert d["status"] == "finished", d["error"]
    doc = d["result"]
    assert doc["reference_model"] == "tiny-bert" and doc["dataset"]["n"] == 4
    examples = load_dataset("sst2", limit=4)
    preds = client.post("/api/predict", json={"texts": [e.text for e in examples]}).json()
    right = [p["label"] == e.label for p, e in zip(preds["predictions"], examples, strict=True)]
    assert doc["reference"]["accuracy"]["value"] == pytest.approx(sum(right) / 4)
    runs = client.get("/api/compare").json()["runs"]
    assert [r["run_id"] for r in runs] == [doc["run_id"]]
    assert runs[0]["variants"] == ["rtn8:g32:asym"] and runs[0]["status"] == "finished"
    assert runs[0]["summary"]["ranking"] == ["occlusion"]
    report = client.get(f"/api/compare/{doc['run_id']}").json()
    assert report["variants"] == doc["variants"] and report["ranking"] == doc["ranking"]
    html = client.get(f"/api/runs/{doc['run_id']}/export", params={"format": "html"}).text
    assert "Compression study" in html and "rtn8:g32:asym" in html


def test_compare_bad_input(client: TestClient) -> None:
    post = client.post
    assert "built-in" in error_of(
        post("/api/compare", json={"variants": "rtn8", "dataset": "/x"}), 400
    )
    assert "data_dir" in error_of(
        post("/api/compare", json={"variants": "rtn8", "data_dir": "/x"}), 403
    )
    assert "at most 200" in error_of(
        post("/api/compare", json={"variants": "rtn8", "limit": 999}), 400
    )
    many = {"variants": "rtn8,rtn4,magnitude:0.5,magnitude:0.3,rtn2"}
    assert "at most 4 variants" in error_of(post("/api/compare", json=many), 400)
    error_of(post("/api/compare", json={"variants": "zip9"}), 400)
    rid = client.post("/api/predict", json={"text": "fine"}).json()["run_id"]
    assert "not a compare run" in error_of(client.get(f"/api/compare/{rid}"), 400)
    error_of(client.get("/api/compare/nope"), 404)
