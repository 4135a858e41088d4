"""What a web client cannot make the server do — build bf16 or int8 copies of a served model, keep
ever more uploaded files — and the one rule for "the first causal LM" (LM audits, what-if searches).
Every refusal is a one-line JSON error before any job is queued."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from servers import api_client, error_of, finished

from explainlm.server import Limits, ModelSpec
from explainlm.server.models import ModelRegistry
from explainlm.server.uploads import upload_dir
from explainlm.store import open_store


@pytest.fixture(scope="module")
def client(tiny_bert_dir: Path, tiny_llama_dir: Path) -> Any:
    with api_client(("tiny-bert", tiny_bert_dir), ("tiny-llama", tiny_llama_dir)) as c:
        yield c


def variants(client: Any, name: str) -> dict[str, Any]:
    """The lower-precision copies the server keeps beside its model ``name``."""
    wrapper = client.app.state.server.registry._wrappers.get(name)
    return {} if wrapper is None else dict(wrapper.__dict__.get("_precision_variants", {}))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/predict", {"texts": ["a fine film"], "precision": "bf16"}),
        ("/api/explain", {"texts": ["a fine film"], "methods": ["occlusion"], "precision": "int8"}),
        ("/api/generate", {"prompt": "The capital", "model": "tiny-llama", "precision": "bf16"}),
        ("/api/benchmark", {"dataset": "sst-rationales", "limit": 2, "precision": "int8"}),
    ],
)
def test_a_client_cannot_ask_for_bf16_or_int8(client: Any, path: str, body: dict) -> None:
    message = error_of(client.post(path, json=body), 400)
    assert message.startswith(f"precision {body['precision']!r}: this server takes auto or fp32")
    assert client.get("/api/limits").json()["jobs"]["queued"] == 0 and not open_store().list_runs()
    assert variants(client, "tiny-bert") == {} and variants(client, "tiny-llama") == {}


def test_auto_and_fp32_run_and_keep_no_copy(client: Any) -> None:
    for precision in ("auto", "fp32"):
        body = {"texts": ["a fine film"], "precision": precision, "model": "tiny-bert"}
        r = client.post("/api/predict", json=body)
        assert r.status_code == 200, r.text
        run = open_store().get_run(r.json()["run_id"])
        assert run.params["precision"] == precision
        assert run.params["precision_plan"]["forward"] == "fp32"  # auto: fp32 in the test suite
    assert variants(client, "tiny-bert") == {}
    plan = {"forward": "bf16", "backward": "bf16"}  # the plan is the server's to record
    r = client.post("/api/predict", json={"texts": ["a"], "precision_plan": plan})
    assert "precision_plan is recorded by the server" in error_of(r, 400)


def test_a_run_started_in_bf16_is_not_resumed_through_the_web(client: Any) -> None:
    store = open_store()
    spec = {"texts": ["a fine film", "a dull plot"], "model": "tiny-bert",
            "methods": ["occlusion"], "chunk_size": 1}  # fmt: skip
    ids = {}
    for precision in ("bf16", "fp32"):
        stored = {**spec, "precision": precision}
        ids[precision] = store.start_run("explain", model="tiny-bert",
                                         params={**stored, "request": stored})  # fmt: skip
        store.finish_run(ids[precision], status="interrupted", error="interrupted")
    message = error_of(client.post("/api/explain", json={"resume": ids["bf16"]}), 400)
    assert "runs in precision 'bf16'" in message and f"--resume {ids['bf16']}" in message
    assert variants(client, "tiny-bert") == {}
    r = client.post("/api/explain", json={"resume": ids["fp32"]})
    assert r.status_code == 200, r.text
    assert [e["text"] for e in r.json()["explanations"]] == spec["texts"]
    assert store.get_run(ids["fp32"]).status == "finished"


def table(seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    rows = ["text,label,approved,sex"]
    for i in range(n):
        sex = "f" if i % 2 else "m"
        label, approved = (("yes" if rng.random() < 0.5 else "no") for _ in range(2))
        rows.append(f"applicant {i},{label},{approved},{sex}")
    return "\n".join(rows) + "\n"


def test_one_upload_per_request_and_a_bounded_number_kept(tiny_bert_dir: Path) -> None:
    def audit(c: Any, upload: Any) -> Any:
        body = {"upload": upload, "group_columns": ["sex"], "prediction_column": "approved",
                "positive_labels": ["yes"], "n_boot": 100, "n_perm": 0, "min_group_size": 5}  # fmt: skip
        return c.post("/api/audit/fairness", json=body)

    files = [{"name": f"t{i}.csv", "content": table(i)} for i in range(3)]
    with api_client(("tiny-bert", tiny_bert_dir), limits=Limits(max_uploads=2)) as c:
        assert "upload" in error_of(audit(c, files[:2]), 422)  # one file per request
        for f in files[:2]:
            d = finished(c, audit(c, f))
            assert d["status"] == "finished", d["error"]
        message = error_of(audit(c, files[2]), 507)
        assert message.startswith("upload 't2.csv': this server keeps at most 2 uploaded files")
        assert sorted(p.name.split("-", 1)[1] for p in upload_dir().iterdir()) == [
            "t0.csv",
            "t1.csv",
        ]
        assert finished(c, audit(c, files[0]))["status"] == "finished"  # a file it keeps
        assert c.get("/api/limits").json()["limits"]["max_uploads"] == 2


def test_the_first_causal_lm_is_one_registry_rule(tiny_bert_dir: Path, tiny_llama_dir) -> None:
    specs = [ModelSpec("bert", str(tiny_bert_dir)), ModelSpec("llama", str(tiny_llama_dir)),
             ModelSpec("llama-2", str(tiny_llama_dir))]  # fmt: skip
    registry = ModelRegistry(specs)
    assert registry.first_causal_lm("anything") == "llama" and registry._wrappers == {}
    with api_client(("bert", tiny_bert_dir)) as alone:
        audit = alone.post("/api/audit/lm-bias", json={"benchmark": "crows-pairs"})
        search = alone.post("/api/whatif/counterfactual", json={"text": "a dull film"})
        anchor = alone.post("/api/whatif/anchor", json={"text": "a dull film",
                                                        "perturbation": "llm"})  # fmt: skip
        got = [error_of(r, 400) for r in (audit, search, anchor)]
    none = "needs a causal language model and this server offers none (its models: bert)"
    assert got == [
        f"a language-model audit {none}",
        f"a counterfactual search with llm candidates or fluency scores {none}",
        f"an anchor search with llm perturbations {none}",
    ]
