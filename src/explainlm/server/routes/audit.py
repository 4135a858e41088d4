"""``/api/audit/*``: fairness and social-bias audits (``explainlm audit …``), always background jobs.

One endpoint per audit kind, its body the service's request (plus an uploaded table). The server
reads no path a client names: data are built-in sets or an uploaded file, models configured names.
``GET /api/audit/kinds`` describes every kind's options for the UI's form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from explainlm.server import validate as v
from explainlm.server.bodies import (
    BiosAuditBody,
    CounterfactualAuditBody,
    FairnessAuditBody,
    LMBiasAuditBody,
)
from explainlm.server.errors import ApiError
from explainlm.server.forms import form_fields
from explainlm.server.running import ServerState, run_service, server_state
from explainlm.server.uploads import NamedUploads, save_upload
from explainlm.server.validate import refuse_paths
from explainlm.services import audit as service

router = APIRouter(tags=["audit"])

BODIES = {
    "fairness": FairnessAuditBody,
    "counterfactual": CounterfactualAuditBody,
    "lm-bias": LMBiasAuditBody,
    "bios": BiosAuditBody,
}
# the built-in data each kind may name (anything else is uploaded)
BUILTIN_DATA = {
    "fairness": ("data", ["biosbias:test", "biosbias:train", "biosbias:all"]),
    "counterfactual": ("data", ["eec"]),
    "lm-bias": ("pairs_file", []),
}
SUMMARIES = {
    "fairness": "Do a classifier's decisions (or predictions you give in a column) differ between "
    "groups? Rates by group, disparate impact (four-fifths rule), equal-opportunity and "
    "equalized-odds differences: rates with Wilson intervals, gaps with bootstrap CIs and "
    "permutation tests.",
    "counterfactual": "Swap identity terms (he → she, names) in otherwise identical texts and "
    "compare the model's probability: the mean gap and the flip rate with CIs, by template and "
    "emotion, and the attribution the identity words get.",
    "lm-bias": "Does a language model prefer stereotypes? CrowS-Pairs, BBQ, WinoBias, BOLD or your "
    "own minimal pairs, with CIs and multiple-testing-corrected p-values.",
    "bios": "Bias in Bios: an occupation classifier's true-positive-rate gaps between women and "
    "men, per occupation, and the plausibility of its attributions.",
}
HIDDEN = ("html", "resume", "device", "max_batch_tokens", "upload", "async", "text", "pairs_file")
STATISTICS = {"n_boot", "n_perm", "correction", "level", "seed"}
HELP = {
    "n_boot": "bootstrap resamples for the confidence intervals",
    "n_perm": "permutations for the p-values (0: no test)",
    "correction": "multiple-testing correction: Holm (family-wise), Benjamini–Hochberg (FDR), none",
    "level": "confidence level of the intervals",
    "seed": "random seed (bootstrap, permutations, samples)",
    "group_columns": "columns naming each text's group (comma-separated); each is audited",
    "label_column": "gold labels (for true-positive rates and accuracy)",
    "prediction_column": "audit these predictions instead of running a model",
    "score_column": "scores of one positive label (with exactly one positive label)",
    "positive_labels": "the favourable label(s) (default: positive, or the second of two)",
    "intersections": "also audit every combination of two group columns",
    "min_group_size": "groups smaller than this are reported but not compared",
    "swap": "identity terms to swap: gender or race",
    "label": "the label whose probability is compared",
    "attribution_method": "method measuring how much the identity words weigh",
    "attribution_limit": "pairs whose attributions are computed",
    "benchmark": "CrowS-Pairs, BBQ, WinoBias, BOLD, or your own minimal pairs (upload)",
    "bias_types": "only these CrowS-Pairs bias types (e.g. gender,race-color)",
    "categories": "only these BBQ categories",
    "per_category": "a seeded sample of this many BBQ items per category",
    "domains": "BOLD domains (gender, race, …)",
    "per_group": "BOLD prompts per group",
    "classifier": "BOLD: the model scoring each continuation's sentiment",
    "baseline": "a second classifier to compare with",
    "plausibility": "compare attributions with human rationales by gender",
    "limit": "only the first N items (at most the server's limit)",
}
PAIRS_UPLOAD = {
    "name": "upload",
    "type": "data",
    "choices": [],
    "required": True,
    "optional": False,
    "default": None,
    "group": "audit",
    "description": "your minimal pairs: a CSV, TSV or JSONL file with sent_more, sent_less",
    "when": {"field": "benchmark", "values": ["pairs"]},
}
# lm-bias options that apply to some benchmarks only (the form hides the others)
WHEN = {
    "bias_types": ["crows-pairs", "pairs"],
    "categories": ["bbq"],
    "per_category": ["bbq"],
    "split": ["winobias"],
    "kinds": ["winobias"],
    "domains": ["bold"],
    "per_group": ["bold"],
    "max_new_tokens": ["bold"],
    "classifier": ["bold"],
    "label": ["bold"],
    "min_group_size": ["bold"],
}


@router.get("/api/audit/kinds")
def kinds(state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """Each audit kind's options (name, type, choices, default, bounds, help) and built-in data."""
    out = {}
    for kind, body in BODIES.items():
        fields = form_fields(body, HIDDEN)
        for f in fields:
            f["description"] = HELP.get(f["name"], f["description"])
            f["group"] = "statistics" if f["name"] in STATISTICS else "audit"
            if kind == "lm-bias" and f["name"] in WHEN:
                f["when"] = {"field": "benchmark", "values": WHEN[f["name"]]}
            if f["name"] == "data":
                f["type"] = "data"
                f["choices"] = BUILTIN_DATA[kind][1]
        if kind == "lm-bias":  # the pairs benchmark reads an uploaded file
            fields.insert(1, dict(PAIRS_UPLOAD))
        out[kind] = {"fields": fields, "summary": SUMMARIES[kind]}
    return {"kinds": out, "max_items": state.limits.max_audit_items}


def _checked(body: Any, state: ServerState, kind: str) -> Any:
    """The limits a shared server adds; models resolved to configured names."""
    limits = state.limits
    refuse_paths(body)
    if body.resume is not None:
        raise ApiError(400, "resume audits with the CLI: explainlm audit … --resume RUN_ID")
    if body.limit is None or body.limit > limits.max_audit_items:
        raise ApiError(400, f"limit must be at most {limits.max_audit_items} items per web audit")
    for name in ("n_boot", "n_perm"):
        if getattr(body, name) > limits.max_resamples:
            raise ApiError(400, f"{name} must be at most {limits.max_resamples} on this server")
    v.check_batch_tokens(getattr(body, "max_batch_tokens", None), limits)
    update: dict[str, Any] = {}
    registry = state.registry
    for name in ("model", "classifier", "baseline"):
        value = getattr(body, name, None)
        if value is not None:
            update[name] = registry.check(value)
    if kind in ("counterfactual", "bios") or (
        kind == "fairness" and body.prediction_column is None
    ):
        update["model"] = registry.check(body.model)  # default: the server's first
    if kind == "lm-bias":
        if body.model is None:
            update["model"] = registry.first_causal_lm("a language-model audit")
        if body.benchmark == "bold" and body.classifier is None:
            update["classifier"] = update["model"]  # the LM itself, zero-shot
        if body.max_new_tokens > limits.max_new_tokens:
            raise ApiError(400, f"max_new_tokens must be at most {limits.max_new_tokens}")
    return body.model_copy(update=update)


def _data(body: Any, kind: str, max_uploads: int) -> tuple[Any, dict[str, str]]:
    """Built-in data by name, or the uploaded table saved; returns the body and uploaded names."""
    field, builtin = BUILTIN_DATA.get(kind, ("", []))
    if not field:
        if body.upload is not None:
            raise ApiError(400, f"the {kind} audit reads built-in data only: no upload")
        return body, {}
    if kind == "counterfactual" and body.swap not in ("gender", "race"):
        raise ApiError(400, "swap: this server offers the gender and race swap lists")
    if kind == "lm-bias" and body.upload is None:
        return body, {}  # a built-in benchmark (the body checked that pairs has its file)
    if body.upload is None:
        value = getattr(body, field)
        if value is None:
            raise ApiError(400, f"{field}: choose {' or '.join(builtin)}, or upload a table")
        if value not in builtin:
            raise ApiError(
                403, f"{field}: this server does not read files; upload the table instead"
            )
        return body, {}
    path = save_upload(body.upload.name, body.upload.content, max_uploads)
    return body.model_copy(update={field: path, "upload": None}), {path: body.upload.name}


async def _audit(body: Any, state: ServerState, kind: str) -> Any:
    body, names = _data(_checked(body, state, kind), kind, state.limits.max_uploads)
    return await run_service(state, body, NamedUploads(service, names), True)  # type: ignore[arg-type]


@router.post("/api/audit/fairness", status_code=202)
async def fairness(body: FairnessAuditBody, state: ServerState = Depends(server_state)) -> Any:
    """Group fairness with CIs and tests (``explainlm audit fairness --json``); always a job."""
    return await _audit(body, state, "fairness")


@router.post("/api/audit/counterfactual", status_code=202)
async def counterfactual(
    body: CounterfactualAuditBody, state: ServerState = Depends(server_state)
) -> Any:
    """Counterfactual identity fairness: swap identity terms, compare the prediction; a job."""
    return await _audit(body, state, "counterfactual")


@router.post("/api/audit/lm-bias", status_code=202)
async def lm_bias(body: LMBiasAuditBody, state: ServerState = Depends(server_state)) -> Any:
    """Social bias of a language model: CrowS-Pairs, BBQ, WinoBias, BOLD or your pairs; a job."""
    return await _audit(body, state, "lm-bias")


@router.post("/api/audit/bios", status_code=202)
async def bios(body: BiosAuditBody, state: ServerState = Depends(server_state)) -> Any:
    """Bias in Bios: occupation classifier's true-positive-rate gaps by gender; a job."""
    return await _audit(body, state, "bios")
