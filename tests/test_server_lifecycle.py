"""The web app's run lifecycle and hardening: a server killed (SIGKILL, SIGTERM) mid-job and
restarted leaves no run ``running`` and resumes to identical results; a client that goes away
cancels its job, and a job cancelled while it waits for its model is recorded as cancelled; only
loopback Host headers without a token; no store path in error messages.

The kill tests run ``explainlm serve`` as a real process and talk to it over HTTP.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import serve
from test_faults import count, difference, raw

from explainlm.server import create_app
from explainlm.server.config import ModelSpec, ServerConfig
from explainlm.store import open_store

MAIN = "import sys; from explainlm.cli.app import main; sys.exit(main(sys.argv[1:]))"
WORDS = "good bad film plot actor dull great boring fine story slow warm".split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, model: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "EXPLAINLM_HOME": str(home), "OMP_NUM_THREADS": "1"}
    args = ["serve", "--port", str(port), "--models", f"tiny={model}", "--workers", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://localhost:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"{url}/api/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def wait_job(url: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        d = httpx.get(f"{url}/api/jobs/{job_id}", timeout=10).json()
        if d["status"] not in ("queued", "running"):
            return d
        time.sleep(0.1)
    raise AssertionError("the job did not end")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_server_killed_mid_job_resumes_to_identical_results(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    random.seed(31)
    rng = random.Random(3)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(30)]
    body = {
        "texts": texts,
        "methods": ["occlusion", "integrated_gradients"],
        "chunk_size": 2,
        "async": True,
    }
    proc, url = start_server(tmp_path / "base", tiny_bert_dir)
    try:
        job = httpx.post(f"{url}/api/explain", json=body, timeout=30).json()
        expected = wait_job(url, job["job_id"])["result"]["explanations"]
    finally:
        stop(proc)
    for i, (sig, rows) in enumerate([(signal.SIGKILL, 10), (signal.SIGTERM, 24)]):
        home = tmp_path / f"home{i}"
        proc, url = start_server(home, tiny_bert_dir)
        job = httpx.post(f"{url}/api/explain", json=body, timeout=30).json()
        while count(home, "explanations") < rows and proc.poll() is None:
            time.sleep(0.02)
        code = stop(proc, sig)
        ((run_id, status),) = raw(home, "SELECT run_id, status FROM runs")
        if sig == signal.SIGTERM:  # the server closed the run itself as it stopped
            assert code == 0 and status == "interrupted", status
        else:
            assert code == -signal.SIGKILL and status == "running"
        proc, url = start_server(home, tiny_bert_dir)  # the restart marks a dead run
        try:
            (after,) = open_store(home / "runs.duckdb").list_runs()
            assert after.status == "interrupted"
            job = httpx.post(
                f"{url}/api/explain", json={"resume": run_id, "async": True}, timeout=30
            ).json()
            done = wait_job(url, job["job_id"])
        finally:
            stop(proc)
        assert done["status"] == "finished", done
        assert done["result"]["run_id"] == run_id
        assert difference(done["result"]["explanations"], expected) is None
        keys = raw(home, "SELECT idx, text, method FROM explanations ORDER BY idx")
        assert [k[0] for k in keys] == list(range(len(expected)))  # none lost, none twice
        assert [r[0] for r in raw(home, "SELECT status FROM runs")] == ["finished"]


def test_a_client_that_goes_away_cancels_its_job(tiny_bert_dir: Path) -> None:
    app = create_app(ServerConfig(models=[ModelSpec("tiny", str(tiny_bert_dir))]))
    rng = random.Random(4)
    texts = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(16)]
    body = {"texts": texts, "methods": ["lime"], "params": ["lime.n_samples=2000"]}
    with serve(app) as url:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up after a second
            httpx.post(f"{url}/api/explain", json=body, timeout=1.0)
        deadline = time.time() + 60
        while time.time() < deadline:
            runs = open_store().list_runs()
            if runs and runs[0].status != "running":
                break
            time.sleep(0.2)
    (run,) = open_store().list_runs()
    assert run.status == "cancelled"
    stored = len(open_store().results(run.run_id, "explanations"))
    assert stored < len(texts)  # it stopped early instead of finishing the work


@pytest.fixture
def app(tiny_bert_dir: Path) -> Any:
    return create_app(ServerConfig(models=[ModelSpec("tiny", str(tiny_bert_dir))]))


@pytest.mark.parametrize(
    ("route", "options", "table"),
    [("predict", {}, "predictions"), ("explain", {"methods": ["occlusion"]}, "explanations")],
)
def test_a_job_cancelled_while_waiting_for_its_model_is_recorded(
    app: Any, route: str, options: dict[str, Any], table: str
) -> None:
    """Another job holds the model: the waiting job's run is already in the store, a cancel ends
    the job at once (not when the model frees), and its run ends ``cancelled``. (The model and
    its task are made by a first request: a task's first making also takes the model's lock.)"""
    held, free = threading.Event(), threading.Event()

    def hold_model(job: Any) -> None:  # another job, running the model until told to stop
        with app.state.registry.lock("tiny"):
            held.set()
            free.wait(30)

    with TestClient(app, base_url="http://localhost") as client:
        assert client.post(f"/api/{route}", json={"text": "first", **options}).status_code == 200
        client.app.state.jobs.submit("hold", hold_model)
        try:
            assert held.wait(10)
            body = {"text": "good film", "async": True, **options}
            job_id = client.post(f"/api/{route}", json=body).json()["job_id"]
            job = poll(client, job_id, lambda d: d["message"].startswith("waiting for tiny"))
            run, first = open_store().list_runs()
            assert (run.command, run.status, first.status) == (route, "running", "finished")
            assert client.delete(f"/api/jobs/{job_id}").status_code == 200
            job = poll(client, job_id, lambda d: d["status"] not in ("queued", "running"))
            assert job["status"] == "cancelled"
            run = open_store().get_run(run.run_id)  # while the other job still holds the model
            assert (run.command, run.status, run.error) == (route, "cancelled", "cancelled")
            assert open_store().results(run.run_id, table) == []
            assert not free.is_set()
        finally:
            free.set()


def poll(client: TestClient, job_id: str, done: Any, timeout: float = 20) -> dict[str, Any]:
    """The job's document once ``done(doc)`` holds (fails after ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        doc = client.get(f"/api/jobs/{job_id}").json()
        if done(doc):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the state: {doc}")


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "192.168.1.5", "a.localhost.evil"]
)
def test_without_a_token_only_loopback_hosts(app: Any, host: str) -> None:
    with TestClient(app, base_url=f"http://{host}") as client:
        for path in ("/", "/api/runs", "/api/models"):
            r = client.get(path)
            assert r.status_code == 403 and "localhost" in r.json()["error"]


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:9", "[::1]:8000"])
def test_loopback_hosts_are_served(app: Any, host: str) -> None:
    with TestClient(app, base_url=f"http://{host}") as client:
        assert client.get("/api/models").status_code == 200


def test_with_a_token_any_host(tiny_bert_dir: Path) -> None:
    cfg = ServerConfig(models=[ModelSpec("tiny", str(tiny_bert_dir))], token="s3cret-token")
    with TestClient(create_app(cfg), base_url="http://explain.example.org") as client:
        r = client.get("/api/models", headers={"Authorization": "Bearer s3cret-token"})
        assert r.status_code == 200


def test_errors_do_not_show_the_store_path(app: Any) -> None:
    home = str(open_store().path.parent)
    with TestClient(app, base_url="http://localhost") as client:
        r = client.get("/api/runs/no-such-run")
        assert r.status_code in (400, 404)
        message = r.json()["error"]
        assert "no-such-run" in message and home not in message and "duckdb" not in message
        # resuming an unknown run is refused before any job (its stored precision is checked)
        r = client.post("/api/explain", json={"resume": "no-such-run", "async": True})
        assert r.status_code == 400 and "no-such-run" in r.json()["error"], r.text
        assert home not in r.json()["error"] and "duckdb" not in r.json()["error"]
