"""``/api/whatif/*``: the what-if page's requests (``explainlm.services.whatif``).

``edit`` answers at once (one pass predicts the original and the edited text); ``counterfactual``
and ``anchor`` are searches, always background jobs with progress and cancel. The explanation the
page shows is ``POST /api/explain`` with ``auto`` (a trusted method, with its faithfulness verdict).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from explainlm.server import validate as v
from explainlm.server.bodies import AnchorBody, CounterfactualBody, EditBody
from explainlm.server.errors import ApiError
from explainlm.server.running import ServerState, prepared, run_service, server_state
from explainlm.services import whatif as service

router = APIRouter(tags=["what-if"])

MAX_REPLACEMENT_CHARS = 100
BUILTIN_HELPERS = {"embeddings": "minilm-l6", "similarity_model": "minilm-l6"}


@router.post("/api/whatif/edit")
async def edit(body: EditBody, http: Request, state: ServerState = Depends(server_state)) -> Any:
    """The prediction of the text with some words removed or replaced (``edits``: word index and
    replacement, "" removes it) or of a retyped ``edited_text``, next to the original's: both
    predictions, the change of every label's probability, and a word-level diff."""
    body = prepared(body, state)
    v.check_texts([body.text], state.limits)
    if body.edited_text is not None:
        v.check_texts([body.edited_text], state.limits, "edited text")
    for e in body.edits:
        if len(e.replacement) > MAX_REPLACEMENT_CHARS:
            raise ApiError(
                400, f"replacement of word {e.index} is longer than {MAX_REPLACEMENT_CHARS} chars"
            )
    return await run_service(state, body, service, False, http)


def _search(body: Any, state: ServerState, budget: tuple[str, int], lm_use: str | None) -> Any:
    """Checks shared by the searches; the helper LM resolved to a configured causal LM (default:
    the first) when ``lm_use`` names what needs one (``None``: nothing does)."""
    body = prepared(body, state)
    v.check_texts(body.texts, state.limits)
    v.check_batch_tokens(body.max_batch_tokens, state.limits)
    if body.resume is not None:
        raise ApiError(400, f"resume with the CLI: explainlm {body.command} --resume RUN_ID")
    name, value = budget
    if value > state.limits.max_search_budget:
        raise ApiError(
            400, f"{name} is {value}; this server allows at most {state.limits.max_search_budget}"
        )
    for field, builtin in BUILTIN_HELPERS.items():
        if getattr(body, field, builtin) != builtin:
            raise ApiError(400, f"{field}: this server uses the built-in {builtin}")
    lm = body.lm
    if lm is not None:
        lm = state.registry.check(lm)
    elif lm_use is not None:
        lm = state.registry.first_causal_lm(lm_use)
    return body.model_copy(update={"lm": lm})


@router.post("/api/whatif/counterfactual", status_code=202)
async def counterfactual(
    body: CounterfactualBody, state: ServerState = Depends(server_state)
) -> Any:
    """Counterfactuals: the fewest word edits that change the prediction (``explainlm
    counterfactual --json``); always a job. ``lm`` (default: the first causal LM) proposes
    replacements (source ``llm``) and scores fluency (``quality``)."""
    lm_use = (
        "a counterfactual search with llm candidates or fluency scores"
        if "llm" in body.sources or body.quality
        else None
    )
    body = _search(body, state, ("max_queries", body.max_queries), lm_use)
    body = body.model_copy(update={"evaluate": [state.registry.check(m) for m in body.evaluate]})
    return await run_service(state, body, service, True)


@router.post("/api/whatif/anchor", status_code=202)
async def anchor(body: AnchorBody, state: ServerState = Depends(server_state)) -> Any:
    """An anchor: words that keep the prediction whatever the others become, with the precision's
    confidence interval and the coverage (``explainlm anchor --json``); always a job."""
    samples = max(body.max_samples, body.validation_samples)
    lm_use = "an anchor search with llm perturbations" if body.perturbation == "llm" else None
    body = _search(body, state, ("max_samples", samples), lm_use)
    return await run_service(state, body, service, True)
