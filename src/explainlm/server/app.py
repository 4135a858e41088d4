"""The FastAPI application: JSON API under ``/api``, the browser UI at ``/``, an API reference at
``/docs`` (served locally, no CDN) and the OpenAPI schema at ``/openapi.json``.

The routes live in :mod:`explainlm.server.routes` (one router per job kind); each runs its job
through the service layer (:mod:`explainlm.services`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from explainlm.server.config import ServerConfig
from explainlm.server.errors import ERRORS, ApiError, install_error_handlers
from explainlm.server.guard import Guard
from explainlm.server.jobs import JobQueue
from explainlm.server.models import ModelRegistry
from explainlm.server.routes import ROUTERS
from explainlm.server.running import ServerState

STATIC = Path(__file__).parent / "static"


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """Build the app; jobs start with the first request (or the lifespan) and stop at shutdown."""
    cfg = config or ServerConfig()
    state = ServerState(
        cfg, ModelRegistry(cfg.models, device=cfg.device), JobQueue(cfg.workers, cfg.queue_size)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from explainlm.store import open_store
        from explainlm.store.recording import interrupt_live_runs

        open_store()  # repairs a damaged store; marks runs of dead processes interrupted
        state.jobs.start()
        yield
        state.jobs.stop()  # running jobs stop at their next step, their runs interrupted
        interrupt_live_runs("interrupted: the server stopped")  # jobs still in a model pass

    app = FastAPI(
        title="explainlm",
        version="1",
        description='Explain language-model predictions. Every error is JSON: {"error": message}.',
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.state.server = state
    app.state.config, app.state.registry, app.state.jobs = cfg, state.registry, state.jobs
    app.add_middleware(Guard, token=cfg.token, max_body=cfg.limits.max_body_bytes)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    add_pages(app, cfg.static_dir or STATIC)
    return app


def add_pages(app: FastAPI, static_dir: Path) -> None:
    """The UI (``/``), the API reference (``/docs``), static files, and 404 for unknown API paths."""

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        include_in_schema=False,
    )
    def not_found(rest: str) -> None:
        raise ApiError(404, f"no API endpoint /api/{rest}")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static_dir / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(static_dir / "docs.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(static_dir / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=static_dir), name="static")
