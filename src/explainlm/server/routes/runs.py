"""``/api/runs``: the run store's list, one run's results, and exports (JSON or HTML)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from explainlm.errors import UserError
from explainlm.server.errors import ApiError
from explainlm.services import runs as service
from explainlm.services.base import ServiceContext

router = APIRouter(tags=["runs"])


def _context() -> ServiceContext:
    from explainlm.store import open_store

    return ServiceContext(store=open_store(), source="server")


def _found(fn: Any, request: Any) -> Any:
    try:
        return fn(request, _context())
    except UserError as e:
        raise ApiError(404 if "no run" in str(e) else 400, str(e)) from None


@router.get("/api/runs")
def runs(
    search: str | None = Query(None, max_length=200),
    command: str | None = Query(None, max_length=40),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> Any:
    """Runs in the store, newest first (``offset``: skip that many, for paging); ``search``
    matches the id, model, command, status and parameters (texts included)."""
    req = service.RunsListRequest(
        limit=limit, offset=offset, command=command, search=search, view="brief"
    )
    return service.list_runs(req, _context()).to_json_doc()


@router.get("/api/runs/{run_id}")
def run(run_id: str) -> Any:
    """One run: its record and its results (explanations, attributions or predictions)."""
    req = service.RunShowRequest(run_id=run_id, view="results")
    return _found(service.show_run, req).to_json_doc()


@router.get("/api/runs/{run_id}/export")
def export(run_id: str, format: str = Query("json", pattern="^(json|html)$")) -> Response:
    """Download a run as JSON, or as a self-contained HTML report (all user text escaped)."""
    req = service.RunExportRequest(run_id=run_id, format=format, destination="body")
    out = _found(service.export_run, req)
    disposition = f'attachment; filename="{out.filename}"'
    return Response(
        out.body, media_type=out.media_type, headers={"Content-Disposition": disposition}
    )
