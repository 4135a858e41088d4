"""``/api/compare``: compression studies (``explainlm compare``): the stored runs, one run's report,
and a new (small) comparison as a background job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from explainlm.datasets import DATASETS
from explainlm.errors import UserError
from explainlm.server import validate as v
from explainlm.server.bodies import CompareBody
from explainlm.server.errors import ApiError
from explainlm.server.running import ServerState, run_service, server_state
from explainlm.services import compare as service
from explainlm.services import runs as runs_service
from explainlm.services.base import ServiceContext

router = APIRouter(tags=["compare"])

MAX_ROUNDS = 10


def _context() -> ServiceContext:
    from explainlm.store import open_store

    return ServiceContext(store=open_store(), source="server")


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    """A compare run as the list shows it: what was compared, and what it found so far."""
    params = run.get("params") or {}
    spec = params.get("request") or params
    return {
        "run_id": run["run_id"],
        "created_at": run["created_at"],
        "status": run["status"],
        "error": run.get("error"),
        "reference": run.get("model"),
        "variants": spec.get("variants", []),
        "dataset": spec.get("dataset"),
        "limit": spec.get("limit"),
        "methods": spec.get("methods", []),
        "n_texts": params.get("n_texts"),
        "summary": run.get("summary") or {},
    }


@router.get("/api/compare")
def compare_runs(
    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)
) -> dict[str, Any]:
    """Stored compare runs, newest first: reference, variants, dataset, status and, once finished,
    each variant's prediction agreement with the reference and the methods' stability ranking."""
    req = runs_service.RunsListRequest(limit=limit, offset=offset, command="compare", view="brief")
    runs = runs_service.list_runs(req, _context()).to_json_doc()["runs"]
    return {"runs": [_brief(r) for r in runs]}


@router.get("/api/compare/{run_id}")
def compare_report(run_id: str) -> Any:
    """One compare run's report document (``explainlm compare --json``): a finished run's result,
    or for a running or interrupted run the summary of the variants it has finished."""
    ctx = _context()
    try:
        rec = ctx.store.get_run(run_id)  # type: ignore[union-attr]
        if rec.command != "compare":
            raise ApiError(400, f"run {rec.run_id} is a {rec.command} run, not a compare run")
        return service.summarize_stored(ctx.store, rec.run_id).to_json_doc()
    except UserError as e:
        raise ApiError(404 if "no run" in str(e) else 400, str(e)) from None


@router.post("/api/compare", status_code=202)
async def compare(body: CompareBody, state: ServerState = Depends(server_state)) -> Any:
    """Quantize or prune the reference and compare accuracy, speed and explanations with it
    (``explainlm compare --json``); always a job. Built-in datasets only, a bounded size."""
    limits = state.limits
    v.refuse_paths(body)
    body = body.model_copy(update={"reference": state.registry.check(body.reference)})
    if body.dataset not in DATASETS:
        raise ApiError(
            400, f"unknown dataset {body.dataset!r}; built-in: {', '.join(sorted(DATASETS))}"
        )
    if body.limit is None or body.limit > limits.max_benchmark_examples:
        raise ApiError(400, f"limit must be at most {limits.max_benchmark_examples} examples")
    if len(body.variants) > limits.max_compare_variants:
        raise ApiError(400, f"at most {limits.max_compare_variants} variants per comparison")
    if body.rounds > MAX_ROUNDS or body.timing_texts > limits.max_texts:
        raise ApiError(
            400, f"rounds ≤ {MAX_ROUNDS} and timing_texts ≤ {limits.max_texts} on this server"
        )
    if body.resume is not None:
        raise ApiError(400, "resume comparisons with the CLI: explainlm compare --resume RUN_ID")
    v.check_batch_tokens(body.max_batch_tokens, limits)
    v.check_methods(body.methods, body.method_params, limits)
    return await run_service(state, body, service, True)
