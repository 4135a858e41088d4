"""``POST /api/benchmark``: methods × metrics on a built-in dataset, always a background job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from explainlm.datasets import DATASETS
from explainlm.server import validate as v
from explainlm.server.bodies import BenchmarkBody
from explainlm.server.errors import ApiError
from explainlm.server.running import ServerState, prepared, run_service, server_state
from explainlm.services import benchmark as service

router = APIRouter(tags=["benchmark"])


@router.post("/api/benchmark", status_code=202)
async def benchmark(body: BenchmarkBody, state: ServerState = Depends(server_state)) -> Any:
    """Methods × metrics on a built-in dataset (``explainlm benchmark --json``); always a job."""
    body = prepared(body, state)
    if body.dataset not in DATASETS:
        raise ApiError(
            400, f"unknown dataset {body.dataset!r}; built-in: {', '.join(sorted(DATASETS))}"
        )
    most = state.limits.max_benchmark_examples
    if body.limit is None or body.limit > most:
        raise ApiError(400, f"limit must be at most {most} examples per benchmark")
    if body.resume is not None:
        raise ApiError(400, "resume benchmarks with the CLI: explainlm benchmark --resume RUN_ID")
    v.check_methods(body.methods, body.method_params, state.limits)
    return await run_service(state, body, service, True)
