"""API tests of ``explainlm serve`` with FastAPI's TestClient and the tiny random models."""

from __future__ import annotations

import io
import json
import math
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from explainlm.errors import UserError
from explainlm.server import Limits, ModelSpec, ServerConfig, create_app, parse_models
from explainlm.server.config import check_bind

XSS = "<script>alert(1)</script> and <img src=x onerror=alert(1)> here"


def make_client(bert: Path, llama: Path, **kw: Any) -> TestClient:
    models = [ModelSpec("tiny-bert", str(bert)), ModelSpec("tiny-llama", str(llama))]
    return TestClient(
        create_app(ServerConfig(models=models, **kw)),
        raise_server_exceptions=False,
        base_url="http://localhost",
    )


@pytest.fixture(scope="module")
def client(tiny_bert_dir: Path, tiny_llama_dir: Path) -> Any:
    with make_client(tiny_bert_dir, tiny_llama_dir) as c:
        yield c


def error_of(r: Any, status: int) -> str:
    """The response is JSON ``{"error": message}`` with the status, and no traceback."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body["error"]


def wait_job(client: TestClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        d = client.get(f"/api/jobs/{job_id}").json()
        if d["status"] not in ("queued", "running"):
            return d
        time.sleep(0.05)
    raise AssertionError("job did not finish")


# ------------------------------------------------------------------------------- endpoints
def test_models_and_limits(client: TestClient) -> None:
    d = client.get("/api/models").json()
    assert [m["name"] for m in d["models"]] == ["tiny-bert", "tiny-llama"]
    assert d["default"] == "tiny-bert"
    assert client.get("/api/limits").json()["limits"]["max_texts"] == Limits().max_texts


def test_predict_classifier_and_zero_shot(client: TestClient) -> None:
    d = client.post("/api/predict", json={"text": "A fine film.", "model": "tiny-bert"}).json()
    assert set(d) == {"run_id", "model", "predictions"} and d["model"] == "tiny-bert"
    p = d["predictions"][0]
    assert p["text"] == "A fine film." and set(p["probs"]) == {"negative", "positive"}
    d = client.post(
        "/api/predict",
        json={"texts": ["ok", "bad"], "model": "tiny-llama", "labels": "urgent,routine"},
    ).json()
    assert [set(p["probs"]) for p in d["predictions"]] == [{"urgent", "routine"}] * 2


def test_explain_matches_the_cli_document(client: TestClient) -> None:
    from explainlm.cli.app import main

    body = {"text": "A wonderful, touching film.", "model": "tiny-bert", "methods": ["occlusion"]}
    api = client.post("/api/explain", json=body).json()
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["explain", body["text"], "-m", client.app.state.config.models[0].source,
                     "--method", "occlusion", "--json"]) == 0  # fmt: skip
    cli = json.loads(out.getvalue())
    assert set(api) == set(cli)
    a, c = api["explanations"][0], cli["explanations"][0]
    assert set(a) == set(c)
    assert a["units"] == c["units"] == ["A", "wonderful", ",", "touching", "film", "."]
    assert a["scores"] == pytest.approx(c["scores"], abs=1e-5)


def test_explain_with_summary_and_faithfulness(client: TestClient) -> None:
    body = {
        "texts": ["good film", "a dull plot"],
        "methods": "occlusion,grad_x_input",
        "summary": True,
        "faithfulness": True,
    }
    d = client.post("/api/explain", json=body).json()
    exps = d["explanations"]
    assert [(e["text"], e["method"]) for e in exps] == [
        ("good film", "occlusion"),
        ("good film", "grad_x_input"),
        ("a dull plot", "occlusion"),
        ("a dull plot", "grad_x_input"),
    ]
    assert all(e["summary"].startswith("Predicted") for e in exps)
    f = d["faithfulness"]
    assert [x["method"] for x in f] == [e["method"] for e in exps]
    assert all(isinstance(x["comprehensiveness"], float) for x in f)
    assert all(isinstance(x["sufficiency"], float) for x in f)


def test_faithfulness_matches_a_brute_force_aopc(client: TestClient) -> None:
    """The API's comprehensiveness and sufficiency equal ERASER's AOPC computed by hand: for each
    bin b, remove (or keep only) the top ceil(b·n) words, re-predict the edited text, and average
    the drops in the explained label's probability over the distinct top-k sets."""
    from explainlm.models.words import remove_words, split_words

    texts = ["a gripping, well acted story", "a dull and slow plot"]
    body = {"texts": texts, "methods": ["occlusion", "grad_x_input"], "faithfulness": True}
    d = client.post("/api/explain", json=body).json()
    clf = client.app.state.registry.task("tiny-bert")

    def p(text: str, label: str) -> float:
        return clf.predict([text])[0].probs[label]

    assert len(d["faithfulness"]) == len(d["explanations"]) == 4
    for e, f in zip(d["explanations"], d["faithfulness"], strict=True):
        text, label, scores = e["text"], e["label"], e["scores"]
        spans = split_words(text)
        n = len(spans)
        order = sorted(range(n), key=lambda j: (-scores[j], j))
        ks = sorted({min(n, max(1, math.ceil(b * n - 1e-9))) for b in (0.01, 0.05, 0.1, 0.2, 0.5)})
        comp, suff = [], []
        for k in ks:
            top = set(order[:k])
            comp.append(
                p(text, label)
                - p(remove_words(text, spans, [j not in top for j in range(n)]), label)
            )
            suff.append(
                p(text, label) - p(remove_words(text, spans, [j in top for j in range(n)]), label)
            )
        assert f["method"] == e["method"]
        assert f["comprehensiveness"] == pytest.approx(sum(comp) / len(comp), abs=1e-5)
        assert f["sufficiency"] == pytest.approx(sum(suff) / len(suff), abs=1e-5)


def test_generate(client: TestClient) -> None:
    body = {"prompt": "The capital of France is", "model": "tiny-llama", "max_new_tokens": 3}
    d = client.post("/api/generate", json={**body, "methods": ["occlusion"], "summary": True})
    d = d.json()
    assert set(d) == {"run_id", "model", "prompt", "attributions"}
    a = d["attributions"][0]
    assert len(a["target_units"]) == 3 and len(a["matrix"]) == 3
    assert a["source_units"][:5] == ["The", "capital", "of", "France", "is"]
    assert a["summary"].startswith("The model continued")


def test_async_job_and_cancel(client: TestClient) -> None:
    r = client.post("/api/explain", json={"text": "good", "methods": ["occlusion"], "async": True})
    assert r.status_code == 202 and r.headers["location"] == f"/api/jobs/{r.json()['job_id']}"
    d = wait_job(client, r.json()["job_id"])
    assert d["status"] == "finished" and d["progress"] == 1.0
    assert d["result"]["explanations"][0]["method"] == "occlusion"
    # a job that waits on an event: cancelled while running, it stops at its next step
    jobs, gate = client.app.state.jobs, threading.Event()

    def slow(job: Any) -> str:
        gate.wait(10)
        job.step(1, 2)
        return "never"

    job = jobs.submit("test", slow)
    assert client.delete(f"/api/jobs/{job.id}").status_code == 200
    gate.set()
    assert wait_job(client, job.id)["status"] == "cancelled"
    error_of(client.get("/api/jobs/nope"), 404)


def test_queue_full_is_429(tiny_bert_dir: Path, tiny_llama_dir: Path) -> None:
    with make_client(tiny_bert_dir, tiny_llama_dir, workers=1, queue_size=1) as c:
        gate = threading.Event()
        jobs = c.app.state.jobs
        first = jobs.submit("block", lambda j: gate.wait(10))
        while first.status == "queued":
            time.sleep(0.01)
        queued = jobs.submit("block", lambda j: gate.wait(10))
        r = c.post("/api/predict", json={"text": "hello"})
        assert "busy" in error_of(r, 429)
        assert r.headers["retry-after"] == "5"
        assert c.delete(f"/api/jobs/{queued.id}").json()["status"] == "cancelled"
        gate.set()


# ------------------------------------------------------------------------------------ limits
def test_limits(client: TestClient) -> None:
    lim = Limits()
    msg = error_of(client.post("/api/explain", json={"text": "x" * (lim.max_text_chars + 1)}), 413)
    assert "too long" in msg
    big = {"texts": ["word " * 700] * 80}
    assert "too large" in error_of(client.post("/api/predict", json=big), 413)
    many = {"texts": ["a"] * (lim.max_texts + 1)}
    assert "too many texts" in error_of(client.post("/api/predict", json=many), 413)
    r = client.post(
        "/api/generate", json={"prompt": "hi", "model": "tiny-llama", "max_new_tokens": 999}
    )
    assert "max_new_tokens" in error_of(r, 400)
    five = ["occlusion", "saliency", "grad_x_input", "integrated_gradients", "lime"]
    assert "too many methods" in error_of(
        client.post("/api/explain", json={"text": "a", "methods": five}), 400
    )
    r = client.post(
        "/api/explain",
        json={"text": "a", "methods": ["lime"], "params": {"lime": {"n_samples": 10**7}}},
    )
    assert "limit" in error_of(r, 400)


def test_bad_input(client: TestClient) -> None:
    assert "unknown model" in error_of(
        client.post("/api/predict", json={"text": "a", "model": "gpt2"}), 400
    )
    for path in ("/etc/passwd", "../models/x", "HuggingFaceTB/SmolLM2-135M", "~/m", "C:\\m"):
        assert "paths and hub ids" in error_of(
            client.post("/api/explain", json={"text": "a", "model": path}), 403
        )
    assert "empty" in error_of(client.post("/api/predict", json={"text": "   "}), 400)
    assert "no text" in error_of(client.post("/api/predict", json={}), 400)
    assert (
        "unknown"
        in error_of(
            client.post("/api/explain", json={"text": "a", "methods": ["nope"]}), 400
        ).lower()
    )
    error_of(client.post("/api/explain", json={"text": "a", "target": "no-such-label"}), 400)
    error_of(
        client.post(
            "/api/predict", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    assert (
        "extra"
        in error_of(client.post("/api/predict", json={"text": "a", "bogus": 1}), 422).lower()
    )
    error_of(
        client.post("/api/explain", json={"text": "a", "model": "tiny-llama", "task": "generator"}),
        400,
    )
    error_of(client.get("/api/nothing-here"), 404)


def test_internal_errors_are_json(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from explainlm.services import predict

    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(predict, "run", boom)
    msg = error_of(client.post("/api/predict", json={"text": "a"}), 500)
    assert "secret" not in msg and "RuntimeError" in msg


def test_auth(tiny_bert_dir: Path, tiny_llama_dir: Path) -> None:
    with make_client(tiny_bert_dir, tiny_llama_dir, token="s3cret-token") as c:
        assert "bearer" in error_of(c.get("/api/models"), 401).lower()
        assert c.get("/api/models").headers["www-authenticate"].startswith("Bearer")
        error_of(c.get("/api/runs", headers={"Authorization": "Bearer wrong-token"}), 401)
        error_of(c.post("/api/predict", json={"text": "a"}), 401)
        ok = c.get("/api/models", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        assert c.get("/").status_code == 200  # the page itself is public; its API calls are not


def test_serve_refuses_open_host_without_token() -> None:
    from explainlm.server.command import serve_cmd

    with pytest.raises(UserError, match="without --token"):
        serve_cmd(host="0.0.0.0", token=None)
    with pytest.raises(UserError, match="at least 8"):
        check_bind("0.0.0.0", "short")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "long-enough-token")


def test_parse_models(tmp_path: Path) -> None:
    d = tmp_path / "my-model"
    d.mkdir()
    specs = parse_models(f"smollm2-135m,{d},x={d}")
    assert [(s.name, s.source) for s in specs] == [
        ("smollm2-135m", "smollm2-135m"),
        ("my-model", str(d)),
        ("x", str(d)),
    ]
    with pytest.raises(UserError, match="twice"):
        parse_models("a,a")


# -------------------------------------------------------------------------------------- runs
def test_runs_list_get_export(client: TestClient) -> None:
    d = client.post(
        "/api/explain", json={"text": XSS, "methods": ["occlusion"], "faithfulness": True}
    ).json()
    rid = d["run_id"]
    runs = client.get("/api/runs").json()["runs"]
    assert runs[0]["run_id"] == rid and runs[0]["preview"] == XSS
    assert [
        r["run_id"] for r in client.get("/api/runs", params={"search": rid[-6:]}).json()["runs"]
    ] == [rid]
    assert client.get("/api/runs", params={"search": "zzz-none"}).json()["runs"] == []
    one = client.get(f"/api/runs/{rid}").json()
    assert one["run"]["command"] == "explain" and one["explanations"][0]["text"] == XSS
    assert one["faithfulness"][0]["method"] == "occlusion"
    j = client.get(f"/api/runs/{rid}/export", params={"format": "json"})
    assert j.json()["run"]["run_id"] == rid and "attachment" in j.headers["content-disposition"]
    h = client.get(f"/api/runs/{rid}/export", params={"format": "html"})
    assert h.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in h.text and "<img src=x" not in h.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in h.text and "Faithfulness" in h.text
    error_of(client.get("/api/runs/no-such-run"), 404)
    error_of(client.get(f"/api/runs/{rid}/export", params={"format": "pdf"}), 422)


def test_generate_and_predict_runs(client: TestClient) -> None:
    g = client.post(
        "/api/generate", json={"prompt": XSS, "model": "tiny-llama", "max_new_tokens": 2}
    ).json()
    one = client.get(f"/api/runs/{g['run_id']}").json()
    assert one["prompt"] == XSS and len(one["attributions"][0]["matrix"]) == 2
    h = client.get(f"/api/runs/{g['run_id']}/export?format=html").text
    assert "<script>alert" not in h and "&lt;script&gt;" in h
    p = client.post("/api/predict", json={"text": XSS}).json()
    one = client.get(f"/api/runs/{p['run_id']}").json()
    assert one["predictions"][0]["text"] == XSS
    assert "<img src=x" not in client.get(f"/api/runs/{p['run_id']}/export?format=html").text


# --------------------------------------------------------------------------------- benchmark
def test_benchmark_job(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from explainlm.services import benchmark

    error_of(client.post("/api/benchmark", json={"dataset": "../etc"}), 400)
    error_of(client.post("/api/benchmark", json={"dataset": "sst2", "limit": 10**6}), 400)
    assert "unknown metric 'nope'" in error_of(
        client.post("/api/benchmark", json={"metrics": ["nope"]}), 400
    )
    assert "output" in error_of(client.post("/api/benchmark", json={"output": "/tmp/x"}), 403)
    seen: list[Any] = []

    class Result:
        def to_json_doc(self) -> dict[str, Any]:
            return {"run_id": "r", "model": "tiny-bert", "dataset": "sst2", "n": 2}

    def fake_run(request: Any, ctx: Any) -> Result:
        seen.append((request, ctx))
        with ctx.progress.stage_of("benchmark", 2) as progress:
            progress.advance(1)
            seen.append(ctx.progress.job.to_dict()["progress"])
            progress.advance(1)
        return Result()

    monkeypatch.setattr(benchmark, "run", fake_run)
    r = client.post("/api/benchmark", json={"dataset": "sst2", "limit": 2})
    assert r.status_code == 202
    d = wait_job(client, r.json()["job_id"])
    assert d["status"] == "finished" and d["result"]["n"] == 2
    request, ctx = seen[0]
    assert (request.dataset, request.limit, request.model) == ("sst2", 2, "tiny-bert")
    assert request.metrics == ["comprehensiveness", "sufficiency"]  # the server's default
    assert ctx.source == "server" and ctx.models is client.app.state.registry
    assert seen[1] == 0.5  # the job's progress follows the service's progress


# ---------------------------------------------------------------------------------------- UI
def test_pages_and_openapi(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    assert "cdn" not in r.text.lower()
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/predict", "/api/explain", "/api/generate", "/api/benchmark", "/api/jobs/{job_id}",
              "/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/export", "/api/models"):  # fmt: skip
        assert p in paths
    assert (
        client.get("/static/js/main.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert (
        "access-control-allow-origin"
        not in client.get("/api/models", headers={"Origin": "http://evil.example"}).headers
    )


def test_concurrent_store_reads(client: TestClient) -> None:
    """Request threads and job threads open the run store at the same time without conflicts."""
    from concurrent.futures import ThreadPoolExecutor

    rid = client.post("/api/predict", json={"text": "fine"}).json()["run_id"]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.get(f"/api/runs/{rid}").status_code, range(24)))
    assert codes == [200] * 24


def test_one_request_runs_all_its_methods_in_one_call(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each text is predicted and explained once for every method together (and one generation
    serves every method), not once per method."""
    import explainlm.attribution
    import explainlm.generation

    calls: list[tuple[Any, ...]] = []
    real_explain, real_generate = (
        explainlm.attribution.explain,
        explainlm.generation.explain_generation,
    )

    def explain(texts: Any, model: Any, methods: Any, **kw: Any) -> Any:
        calls.append(("explain", list(texts), list(methods)))
        return real_explain(texts, model, methods, **kw)

    def explain_generation(prompts: Any, model: Any, methods: Any, **kw: Any) -> Any:
        calls.append(("generate", list(prompts), list(methods)))
        return real_generate(prompts, model, methods, **kw)

    monkeypatch.setattr(explainlm.attribution, "explain", explain)
    monkeypatch.setattr(explainlm.generation, "explain_generation", explain_generation)
    methods = ["occlusion", "grad_x_input", "random"]
    d = client.post("/api/explain", json={"texts": ["good film", "dull"], "methods": methods})
    assert len(d.json()["explanations"]) == 6
    g = client.post(
        "/api/generate", json={"prompt": "Hi", "model": "tiny-llama", "max_new_tokens": 2,
                               "methods": ["occlusion", "random"]},
    )  # fmt: skip
    assert len(g.json()["attributions"]) == 2
    assert calls == [
        ("explain", ["good film", "dull"], methods),
        ("generate", ["Hi"], ["occlusion", "random"]),
    ]


def test_request_fields_that_touch_server_files_are_refused(client: TestClient) -> None:
    for field, value in (("input", "/etc/passwd"), ("html", "/tmp/report.html")):
        msg = error_of(client.post("/api/explain", json={"text": "a", field: value}), 403)
        assert field in msg and "/etc" not in msg
    assert "no method given" in error_of(
        client.post("/api/explain", json={"text": "a", "methods": []}), 400
    )
    assert "unknown parameter" in error_of(
        client.post(
            "/api/explain",
            json={"text": "a", "methods": ["occlusion"], "params": ["occlusion.window=3"]},
        ),
        400,
    )
