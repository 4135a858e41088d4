"""What the server offers: models, limits, and the method, metric and dataset registries (the
UI builds its choices from these)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from explainlm.registry import describe_entry
from explainlm.server.running import ServerState, server_state

router = APIRouter(tags=["models"])


@router.get("/api/models")
def models(state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """The models this server offers (requests name one of them)."""
    return {"models": state.registry.describe(), "default": state.registry.names[0]}


@router.get("/api/limits")
def limits(state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """The server's request limits and job-queue state."""
    return {"limits": state.limits.__dict__, "jobs": state.jobs.stats()}


@router.get("/api/methods", tags=["registries"])
def methods() -> dict[str, Any]:
    """Every explanation method: name, summary, citation and parameters with defaults."""
    from explainlm.methods import METHODS

    return {"methods": [describe_entry(name, cls) for name, cls in METHODS.items()]}


@router.get("/api/metrics", tags=["registries"])
def metrics() -> dict[str, Any]:
    """Every evaluation metric: name, family, direction, citation and parameters."""
    from explainlm.evaluation import METRICS

    return {"metrics": METRICS.describe()}


@router.get("/api/datasets", tags=["registries"])
def datasets() -> dict[str, Any]:
    """The built-in datasets a benchmark can name."""
    from explainlm.datasets import DATASETS

    return {"datasets": DATASETS.describe()}
