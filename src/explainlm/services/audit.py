"""Audit jobs: group fairness, counterfactual identity fairness, LM social bias, Bias in Bios.

One request type per audit kind (all options validated without a model) and one :func:`run`.
Data are read and checked (columns, groups, bias types, pair files) before any model loads.
Per-item results go to the run store's ``items`` table (kind ``audit``) chunk by chunk, so
``resume=RUN_ID`` continues an interrupted audit without recomputing finished items.

>>> build_request(LMBiasAuditRequest, benchmark="crows-pairs", bias_types=["gender"]).command
'audit-lm-bias'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import ServiceContext, ServiceRequest, absolute_path, build_request
from explainlm.store import RunContext

ITEM_KIND = "audit"
DEFAULT_LM = "smollm2-135m"

__all__ = [
    "AuditResult",
    "BiosAuditRequest",
    "CounterfactualAuditRequest",
    "FairnessAuditRequest",
    "LMBiasAuditRequest",
    "build_request",
    "run",
]


class _AuditOptions(ServiceRequest):
    """Options every audit shares. The spec names data files by absolute path (a run resumes,
    and a cluster's workers read them, from any working directory)."""

    path_fields: ClassVar[tuple[str, ...]] = ("html",)

    n_boot: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples")
    n_perm: int = Field(1000, ge=0, le=100_000, description="permutations (0: no test)")
    correction: Literal["holm", "bh", "none"] = "holm"
    level: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0
    max_batch_tokens: int = Field(DEFAULT_MAX_BATCH_TOKENS, ge=16)
    device: str | None = None
    html: str | None = None
    resume: str | None = None

    def spec(self) -> dict[str, Any]:
        doc = super().spec()
        data = doc.get("data")
        if isinstance(data, str) and data != "eec" and not data.startswith("biosbias"):
            doc["data"] = absolute_path(data)  # a file (eec, biosbias:SPLIT are built in)
        return doc

    def repeat_spec(self) -> dict[str, Any]:
        """The spec that must match to resume a run (output options left out)."""
        return {k: v for k, v in self.spec().items() if k not in ("html", "resume", "device")}


class FairnessAuditRequest(_AuditOptions):
    command: ClassVar[str] = "audit-fairness"
    data: str
    group_columns: list[str] = Field(min_length=1)
    model: str | None = None
    text_column: str = "text"
    label_column: str | None = "label"
    prediction_column: str | None = None
    score_column: str | None = None
    positive_labels: list[str] | None = None
    intersections: bool = True
    min_group_size: int = Field(20, ge=2)
    limit: int | None = Field(None, ge=1)

    @field_validator("group_columns")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("group columns must be distinct")
        return v

    def model_post_init(self, _ctx: Any) -> None:
        if self.model is None and self.prediction_column is None:
            raise UserError("give --model (to predict) or --prediction-column (predictions given)")
        if self.model is not None and self.prediction_column is not None:
            raise UserError("give either --model or --prediction-column, not both")


class CounterfactualAuditRequest(_AuditOptions):
    command: ClassVar[str] = "audit-counterfactual"
    model: str
    data: str = "eec"
    text_column: str = "text"
    swap: str = "gender"
    label: str | None = None
    attribution_method: str = "occlusion"
    attribution_limit: int = Field(200, ge=0)
    limit: int | None = Field(None, ge=1)


class LMBiasAuditRequest(_AuditOptions):
    command: ClassVar[str] = "audit-lm-bias"
    path_fields: ClassVar[tuple[str, ...]] = ("html", "pairs_file")
    benchmark: Literal["crows-pairs", "pairs", "bbq", "winobias", "bold"]
    model: str = DEFAULT_LM
    pairs_file: str | None = None
    bias_types: list[str] | None = None
    categories: list[str] | None = None
    per_category: int | None = Field(None, ge=1)
    split: Literal["dev", "test"] = "test"
    kinds: list[Literal["type1", "type2"]] = ["type1", "type2"]
    domains: list[str] = ["gender"]
    per_group: int | None = Field(20, ge=1)
    max_new_tokens: int = Field(20, ge=1, le=256)
    classifier: str = DEFAULT_LM
    label: str = "positive"
    min_group_size: int = Field(10, ge=2)
    limit: int | None = Field(None, ge=1)

    def model_post_init(self, _ctx: Any) -> None:
        if (self.benchmark == "pairs") != (self.pairs_file is not None):
            raise UserError("--pairs FILE goes with the 'pairs' benchmark (and only with it)")
        if self.bias_types and self.benchmark not in ("crows-pairs", "pairs"):
            raise UserError("--bias-types applies to crows-pairs and pairs only")


class BiosAuditRequest(_AuditOptions):
    command: ClassVar[str] = "audit-bios"
    model: str
    baseline: str | None = None
    split: Literal["train", "test", "all"] = "test"
    attribution_method: str = "occlusion"
    plausibility: bool = True
    min_group_size: int = Field(5, ge=2)
    limit: int | None = Field(None, ge=1)


AuditRequest = (
    FairnessAuditRequest | CounterfactualAuditRequest | LMBiasAuditRequest | BiosAuditRequest
)


@dataclass
class AuditResult:
    """An audit's document (JSON-clean), its run id and written files."""

    run_id: str
    kind: str
    model: str | None
    report: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def to_json_doc(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "model": self.model, **self.report,
                "files": self.files}  # fmt: skip


# --------------------------------------------------------------------------------- running
@contextmanager
def _run_context(req: AuditRequest, ctx: ServiceContext, model: str | None) -> Iterator[RunContext]:
    if req.resume is None:
        with ctx.recorded_run(req, model=model) as run:
            yield run
        return
    if ctx.store is None:
        raise UserError("resuming needs the run store")
    rec = ctx.store.get_run(req.resume)
    if rec.command != req.command:
        raise UserError(f"run {rec.run_id} is a {rec.command} run, not {req.command}")
    old = {k: v for k, v in rec.params.items() if k in req.repeat_spec()}
    if old != req.repeat_spec():
        changed = sorted(k for k in req.repeat_spec() if old.get(k) != req.repeat_spec()[k])
        raise UserError(f"cannot resume {rec.run_id}: options differ ({', '.join(changed)})")
    ctx.store.reopen_run(rec.run_id)
    run = RunContext(ctx.store, rec.run_id)
    try:
        yield run
    except KeyboardInterrupt:
        ctx.store.finish_run(run.run_id, status="interrupted", error="interrupted")
        raise
    except BaseException as e:
        ctx.store.finish_run(run.run_id, status="failed", error=f"{type(e).__name__}: {e}")
        raise
    ctx.store.finish_run(run.run_id, summary=run.summary)


def _cache(ctx: ServiceContext, run: RunContext) -> Any:
    from explainlm.audits.runner import MemoryCache, StoreCache

    return MemoryCache() if ctx.store is None else StoreCache(ctx.store, run.run_id, ITEM_KIND)


def run(req: AuditRequest, ctx: ServiceContext) -> AuditResult:
    """Run an audit of any kind (see the request types)."""
    from explainlm.audits import kinds

    prepared = kinds.prepare(req)  # reads and checks the data: no model yet
    with _run_context(req, ctx, getattr(req, "model", None)) as run_ctx:
        doc = kinds.execute(req, prepared, ctx.models, ctx.progress, _cache(ctx, run_ctx))
        result = audit_result(req, run_ctx.run_id, doc)
        run_ctx.summary.update(record_report(ctx.store, result))
        return result


def audit_result(req: AuditRequest, run_id: str, doc: dict[str, Any]) -> AuditResult:
    """The audit's result from its document (made JSON-clean), with its HTML report if asked."""
    from explainlm.audits.stats import clean

    model = getattr(req, "model", None)
    doc = clean(doc)
    files = []
    if req.html:
        from explainlm.audits.report import audit_html
        from explainlm.report.html import write_path

        page = audit_html({**doc, "run_id": run_id, "model": model})
        files.append(str(write_path(Path(req.html), page)))
    return AuditResult(run_id, doc["kind"], model, doc, files)


def record_report(store: Any, result: AuditResult) -> dict[str, Any]:
    """Store the report with its run (items of kind ``audit-report``); the run's summary."""
    if store is not None:
        store.put_items(result.run_id, "audit-report", {"report": result.report})
    return {"kind": result.kind, "conclusions": result.report.get("conclusions", []),
            "files": result.files}  # fmt: skip
