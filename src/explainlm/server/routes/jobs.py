"""``/api/jobs/{id}``: poll and cancel background jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from explainlm.server.running import ServerState, server_state

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs/{job_id}")
def job_status(job_id: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """A job's status (queued, running, finished, failed, cancelled), progress and result."""
    return state.jobs.get(job_id).to_dict()


@router.delete("/api/jobs/{job_id}")
def job_cancel(job_id: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """Cancel a job: a queued one at once, a running one at its next step."""
    return state.jobs.cancel(job_id).to_dict(with_result=False)
