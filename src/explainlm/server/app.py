"""The FastAPI application: JSON API under ``/api``, the browser UI at ``/``, an API reference at
``/docs`` (served locally, no CDN) and the OpenAPI schema at ``/openapi.json``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from explainlm.errors import UserError
from explainlm.server import validate as v
from explainlm.server import work
from explainlm.server.config import ServerConfig
from explainlm.server.errors import ApiError
from explainlm.server.guard import Guard
from explainlm.server.jobs import Job, JobQueue, QueueFull
from explainlm.server.registry import ModelRegistry
from explainlm.server.schemas import (
    BenchmarkRequest,
    ExplainRequest,
    GenerateRequest,
    PredictRequest,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
EXPLAIN_DEFAULT = ["integrated_gradients", "occlusion"]
GENERATE_DEFAULT = ["occlusion"]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "content": {"application/json": {"example": {"error": desc}}}}
    for code, desc in (
        (400, "bad input"),
        (401, "missing or wrong bearer token"),
        (403, "a path or hub id instead of a model name"),
        (413, "request or text too large"),
        (429, "queue full (see Retry-After)"),
    )
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """Build the app; jobs start with the first request (or the lifespan) and stop at shutdown."""
    cfg = config or ServerConfig()
    registry = ModelRegistry(cfg.models, device=cfg.device)
    jobs = JobQueue(cfg.workers, cfg.queue_size)
    limits = cfg.limits

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        jobs.stop()

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
    app.state.config, app.state.registry, app.state.jobs = cfg, registry, jobs
    app.add_middleware(Guard, token=cfg.token, max_body=limits.max_body_bytes)

    # ------------------------------------------------------------------------- error handlers
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, f"internal error ({type(exc).__name__}); see the server log")

    # ------------------------------------------------------------------------------ helpers
    def submit(kind: str, fn: Callable[[Job], Any]) -> Job:
        try:
            return jobs.submit(kind, fn)
        except QueueFull:
            raise ApiError(
                429,
                "the server is busy: every worker is busy and the queue is full; retry later",
                {"Retry-After": str(cfg.retry_after_s)},
            ) from None

    async def respond(kind: str, fn: Callable[[Job], Any], background: bool) -> Any:
        job = submit(kind, fn)
        if background:
            return JSONResponse(
                {"job_id": job.id, "status": job.status},
                status_code=202,
                headers={"Location": f"/api/jobs/{job.id}"},
            )
        return await asyncio.wrap_future(job.future)

    # -------------------------------------------------------------------------------- API
    @app.get("/api/models", tags=["models"])
    def models() -> dict[str, Any]:
        """The models this server offers (requests name one of them)."""
        return {"models": registry.describe(), "default": registry.names[0]}

    @app.get("/api/limits", tags=["models"])
    def get_limits() -> dict[str, Any]:
        """The server's request limits and job-queue state."""
        return {"limits": limits.__dict__, "jobs": jobs.stats()}

    @app.post("/api/predict", tags=["predict"])
    async def predict(req: PredictRequest) -> Any:
        """Labels and probabilities (``explainlm predict --json``)."""
        model = registry.check(req.model)
        texts = req.all_texts()
        v.check_texts(texts, limits)
        v.check_max_new_tokens(req.max_new_tokens, limits)
        big = len(texts) > limits.async_threshold
        return await respond(
            "predict", lambda j: work.run_predict(req, registry, model, j), req.run_async or big
        )

    @app.post("/api/explain", tags=["explain"])
    async def explain(req: ExplainRequest) -> Any:
        """Attributions per text and method (``explainlm explain --json``).

        ``summary``/``faithfulness`` add each explanation's plain-language summary and its
        comprehensiveness and sufficiency (ERASER AOPC).
        """
        model = registry.check(req.model)
        texts = req.all_texts()
        v.check_texts(texts, limits)
        v.check_batch_tokens(req.max_batch_tokens, limits)
        params = v.normalise_params(req.params)
        methods = v.check_methods(req.methods, EXPLAIN_DEFAULT, params, limits)
        big = len(texts) * len(methods) > limits.async_threshold
        return await respond(
            "explain",
            lambda j: work.run_explain(req, registry, model, methods, params, j),
            req.run_async or big,
        )

    @app.post("/api/generate", tags=["generate"])
    async def generate(req: GenerateRequest) -> Any:
        """Generate and attribute every token (``explainlm generate --json``)."""
        model = registry.check(req.model)
        prompt = req.the_prompt()
        v.check_texts([prompt] if prompt is not None else [], limits, "prompt")
        for extra in (req.target_text, req.contrast):
            if extra is not None:
                v.check_texts([extra], limits, "target text")
        v.check_max_new_tokens(req.max_new_tokens, limits)
        v.check_batch_tokens(req.max_batch_tokens, limits)
        params = v.normalise_params(req.params)
        methods = v.check_methods(req.methods, GENERATE_DEFAULT, params, limits)
        big = req.max_new_tokens * len(methods) > 4 * limits.async_threshold
        return await respond(
            "generate",
            lambda j: work.run_generate(req, registry, model, methods, params, j),
            req.run_async or big,
        )

    @app.post("/api/benchmark", tags=["benchmark"], status_code=202)
    async def benchmark(req: BenchmarkRequest) -> Any:
        """Methods × metrics on a built-in dataset (``explainlm benchmark --json``); always a job."""
        found = work.benchmark_function()
        if found is None:
            raise ApiError(501, "benchmarking is not available: explainlm.evaluation is missing")
        model = registry.check(req.model)
        datasets = found[2]
        if req.dataset not in datasets:
            raise ApiError(
                400, f"unknown dataset {req.dataset!r}; built-in: {', '.join(sorted(datasets))}"
            )
        if (req.limit or limits.max_benchmark_examples + 1) > limits.max_benchmark_examples:
            raise ApiError(
                400, f"limit must be at most {limits.max_benchmark_examples} examples per benchmark"
            )
        params = v.normalise_params(req.params)
        from explainlm.evaluation import METRICS

        method_params = {k: p for k, p in params.items() if k not in METRICS}
        v.check_methods(
            req.methods, ["integrated_gradients", "occlusion", "random"], method_params, limits
        )
        for m in req.metrics or []:
            if m not in METRICS:
                raise ApiError(400, f"unknown metric {m!r}; known: {', '.join(METRICS)}")
        return await respond(
            "benchmark", lambda j: work.run_benchmark_job(req, registry, model, params, j), True
        )

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job_status(job_id: str) -> dict[str, Any]:
        """A job's status (queued, running, finished, failed, cancelled), progress and result."""
        return jobs.get(job_id).to_dict()

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def job_cancel(job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a running one at its next step."""
        return jobs.cancel(job_id).to_dict(with_result=False)

    @app.get("/api/runs", tags=["runs"])
    def runs(
        search: str | None = Query(None, max_length=200),
        command: str | None = Query(None, max_length=40),
        limit: int = Query(50, ge=1, le=500),
    ) -> Any:
        """Runs in the store, newest first; ``search`` matches id, model and parameters."""
        from explainlm.server.runs import list_runs

        return list_runs(search, command, limit)

    @app.get("/api/runs/{run_id}", tags=["runs"])
    def run(run_id: str) -> Any:
        """One run: its record and its results (explanations, attributions or predictions)."""
        from explainlm.server.runs import get_run

        return get_run(run_id)

    @app.get("/api/runs/{run_id}/export", tags=["runs"])
    def export(run_id: str, format: str = Query("json", pattern="^(json|html)$")) -> Response:
        """Download a run as JSON, or as a self-contained HTML report (all user text escaped)."""
        from explainlm.server.runs import export_run

        body, media, name = export_run(run_id, format)
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        include_in_schema=False,
    )
    def not_found(rest: str) -> None:
        raise ApiError(404, f"no API endpoint /api/{rest}")

    # --------------------------------------------------------------------------------- UI
    static_dir = cfg.static_dir or STATIC

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static_dir / "index.html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(static_dir / "docs.html")

    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app
