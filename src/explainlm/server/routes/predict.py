"""``POST /api/predict``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from explainlm.server import validate as v
from explainlm.server.bodies import PredictBody
from explainlm.server.running import ServerState, prepared, run_service, server_state
from explainlm.services import predict as service

router = APIRouter(tags=["predict"])


@router.post("/api/predict")
async def predict(
    body: PredictBody, http: Request, state: ServerState = Depends(server_state)
) -> Any:
    """Labels and probabilities (``explainlm predict --json``)."""
    body = prepared(body, state)
    v.check_texts(body.texts, state.limits)
    v.check_max_new_tokens(body.max_new_tokens, state.limits)
    big = len(body.texts) > state.limits.async_threshold
    return await run_service(state, body, service, body.run_async or big, http)
