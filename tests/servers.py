"""Real HTTP servers for tests: an ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def local_ray_cluster(temp_dir: str) -> Iterator[str]:
    """A local Ray cluster (2 CPUs, small object store) owned by the caller; yields its address."""
    import os

    import ray

    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")  # a shared machine: no OOM kills
    ray.init(
        num_cpus=2,
        object_store_memory=200 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def api_client(*models: tuple[str, Any], **config: Any) -> Any:
    """A TestClient of the web app serving ``(name, path)`` models (``localhost``: the Host check);
    ``config``: other :class:`~explainlm.server.ServerConfig` fields (e.g. ``limits``)."""
    from fastapi.testclient import TestClient

    from explainlm.server import ModelSpec, ServerConfig, create_app

    specs = [ModelSpec(name, str(path)) for name, path in models]
    return TestClient(
        create_app(ServerConfig(models=specs, **config)),
        raise_server_exceptions=False,
        base_url="http://localhost",
    )


def error_of(r: Any, status: int) -> str:
    """The response is ``{"error": one line}`` with ``status``, and no traceback."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in r.text
    return body["error"]


def finished(client: Any, r: Any, timeout: float = 120) -> dict[str, Any]:
    """The final state of the background job that response ``r`` (202) started."""
    assert r.status_code == 202, r.text
    job_id, end = r.json()["job_id"], time.time() + timeout
    while time.time() < end:
        d = client.get(f"/api/jobs/{job_id}").json()
        if d["status"] not in ("queued", "running"):
            return d
        time.sleep(0.05)
    raise AssertionError("the job did not end")
