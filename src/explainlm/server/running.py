"""Running a service for a request: as a job on the worker pool, answered at once or polled.

Each job runs its service with a :class:`~explainlm.services.base.ServiceContext` made of the run
store, the job's :class:`~explainlm.server.jobs.JobProgress` (progress and cancellation) and the
server's shared :class:`~explainlm.server.models.ModelRegistry`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from explainlm.server.config import Limits, ServerConfig
from explainlm.server.errors import ApiError
from explainlm.server.jobs import Job, JobQueue, QueueFull
from explainlm.server.models import ModelRegistry
from explainlm.server.validate import check_precision, refuse_paths
from explainlm.services.base import ServiceContext, ServiceRequest


@dataclass
class ServerState:
    """What every route works with (``app.state.server``)."""

    config: ServerConfig
    registry: ModelRegistry
    jobs: JobQueue

    @property
    def limits(self) -> Limits:
        return self.config.limits


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's :class:`ServerState`."""
    return request.app.state.server  # type: ignore[no-any-return]


def prepared(body: Any, state: ServerState) -> Any:
    """The body with its model resolved to a configured name; file fields and precisions other
    than ``auto`` and ``fp32`` refused."""
    refuse_paths(body)
    check_precision(body)
    return body.model_copy(update={"model": state.registry.check(body.model)})


def context(state: ServerState, job: Job) -> ServiceContext:
    from explainlm.store import open_store

    return ServiceContext(
        store=open_store(), progress=job.reporter, models=state.registry, source="server"
    )


def submit(state: ServerState, kind: str, fn: Any) -> Job:
    try:
        return state.jobs.submit(kind, fn)
    except QueueFull:
        raise ApiError(
            429,
            "the server is busy: every worker is busy and the queue is full; retry later",
            {"Retry-After": str(state.config.retry_after_s)},
        ) from None


async def run_service(
    state: ServerState,
    request: ServiceRequest,
    service: ModuleType,
    background: bool,
    client: Request | None = None,
) -> Any:
    """Queue ``service.run(request, ctx)``; answer with its JSON document, or 202 and the job.

    A client that waits for the answer and goes away (closed tab, timeout) cancels its job; a
    background job (202) runs on until it ends or is cancelled with ``DELETE /api/jobs/{id}``.
    """

    def work(job: Job) -> Any:
        return service.run(request, context(state, job)).to_json_doc()

    job = submit(state, request.command, work)
    if background:
        return JSONResponse(
            {"job_id": job.id, "status": job.status},
            status_code=202,
            headers={"Location": f"/api/jobs/{job.id}"},
        )
    answer = asyncio.wrap_future(job.future)
    while client is not None:
        done, _ = await asyncio.wait({answer}, timeout=DISCONNECT_POLL_S)
        if done:
            break
        if await client.is_disconnected():
            state.jobs.cancel(job.id)
            raise ApiError(499, "the client closed the connection; the job was cancelled")
    return await answer


DISCONNECT_POLL_S = 0.5
