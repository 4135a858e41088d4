"""``POST /api/explain``: every requested method in one call (one prediction per text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from explainlm.server import validate as v
from explainlm.server.bodies import ExplainBody
from explainlm.server.running import ServerState, prepared, run_service, server_state
from explainlm.services import explain as service

router = APIRouter(tags=["explain"])


@router.post("/api/explain")
async def explain(
    body: ExplainBody, http: Request, state: ServerState = Depends(server_state)
) -> Any:
    """Attributions per text and method (``explainlm explain --json``).

    ``summary``/``faithfulness`` add each explanation's plain-language summary and its
    comprehensiveness and sufficiency (ERASER AOPC). ``{"resume": RUN_ID}`` (no texts) continues
    an interrupted explain run with its own stored settings.
    """
    body = prepared(body, state)
    if body.resume is None:
        v.check_texts(body.texts, state.limits)
    else:
        v.check_resumed_precision(body.resume)
    v.check_batch_tokens(body.max_batch_tokens, state.limits)
    v.check_methods(body.methods, body.params, state.limits)
    big = len(body.texts) * len(body.methods) > state.limits.async_threshold
    return await run_service(state, body, service, body.run_async or big, http)
