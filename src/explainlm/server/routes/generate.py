"""``POST /api/generate``: one generation, attributed by every requested method in one call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from explainlm.server import validate as v
from explainlm.server.bodies import GenerateBody
from explainlm.server.running import ServerState, prepared, run_service, server_state
from explainlm.services import generate as service

router = APIRouter(tags=["generate"])


@router.post("/api/generate")
async def generate(
    body: GenerateBody, http: Request, state: ServerState = Depends(server_state)
) -> Any:
    """Generate and attribute every token (``explainlm generate --json``)."""
    body = prepared(body, state)
    v.check_texts([body.prompt], state.limits, "prompt")
    for extra in (body.target_text, body.contrast):
        if extra is not None:
            v.check_texts([extra], state.limits, "target text")
    v.check_max_new_tokens(body.max_new_tokens, state.limits)
    v.check_batch_tokens(body.max_batch_tokens, state.limits)
    v.check_methods(body.methods, body.params, state.limits)
    big = body.max_new_tokens * len(body.methods) > 4 * state.limits.async_threshold
    return await run_service(state, body, service, body.run_async or big, http)
