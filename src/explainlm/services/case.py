"""Case studies (``explainlm case DOMAIN``): the whole workflow on a domain's data, for a colleague
who is not an ML person — medicine, law, finance, content moderation.

A case orchestrates the other services (train, predict, explain, benchmark, global importance and
surrogates, audits, counterfactuals, compare) with the case's context, so each step is its own
recorded run; the case run records the whole case document (``items`` kind ``case-report``) with
the ``run_id`` of every step behind its numbers. It writes ``case.json`` and one self-contained
``report.html`` that opens with a plain-language summary, then the evidence with CIs.

>>> CaseRequest(domain="finance").settings()["dataset"]
'financial-phrasebank'
>>> build_request(CaseRequest, domain="astrology")
Traceback (most recent call last):
...
explainlm.errors.UserError: invalid options: domain: Input should be 'medicine', 'law', 'finance' or 'moderation' (got 'astrology')
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from explainlm.services.base import ServiceContext, ServiceRequest, build_request, json_safe
from explainlm.services.case_domains import DOMAINS, RECIPES

ITEM_KIND = "case-report"
Domain = Literal["medicine", "law", "finance", "moderation"]

__all__ = ["CaseRequest", "CaseResult", "build_request", "load_case", "run"]


class CaseRequest(ServiceRequest):
    """Every option of ``explainlm case``; ``None`` takes the domain's default (``DOMAINS``)."""

    command: ClassVar[str] = "case"
    path_fields: ClassVar[tuple[str, ...]] = ("model", "output", "bios_model", "data_dir")

    domain: Domain
    model: str | None = Field(None, description="Trained classifier directory (trained if empty).")
    base_model: str = Field("minilm-l6", description="Encoder to fine-tune when training.")
    train_limit: int | None = Field(None, ge=8, description="Training sentences (default: domain).")
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    max_length: int | None = Field(None, ge=8)
    eval_limit: int | None = Field(None, ge=4, description="Test texts measured.")
    explain_right: int = Field(3, ge=0, description="Correct predictions explained.")
    explain_wrong: int = Field(3, ge=0, description="Wrong predictions explained.")
    faithfulness_limit: int | None = Field(None, ge=2, description="Texts of the faithfulness "
                                           "benchmark.")  # fmt: skip
    compare_methods: list[str] = Field(
        default_factory=lambda: ["integrated_gradients"],
        description="Methods benchmarked next to the trusted one and a random ranking.",
    )
    importance_limit: int | None = Field(None, ge=4, description="Texts of dataset importance.")
    surrogate_limit: int | None = Field(None, ge=10, description="Texts for the surrogate tree.")
    llm: str = Field("smollm2-135m", description="The zero-shot LLM compared with the classifier.")
    llm_limit: int = Field(60, ge=2, description="Test texts the zero-shot LLM predicts.")
    llm_explain: int = Field(2, ge=0, description="LLM predictions explained.")
    counterfactuals: int = Field(4, ge=0, description="Texts searched for counterfactual edits.")
    variants: list[str] = Field(default_factory=lambda: ["int8", "rtn4:g32"])
    compress_limit: int = Field(30, ge=2, description="Test texts of the compression comparison.")
    bios_model: str | None = Field(None, description="Bias-in-Bios classifier (trained if empty).")
    bios_limit: int | None = Field(None, ge=4, description="Test bios audited (default: all).")
    bios_epochs: int = Field(8, ge=1, description="Epochs when the bios classifier is trained.")
    bios_plausibility: bool = Field(True, description="Plausibility by gender (rationale bios).")
    n_boot: int = Field(1000, ge=100, le=20000)
    n_perm: int = Field(1000, ge=0, le=20000)
    seed: int = 0
    output: str | None = Field(None, description="Folder for report.html and case.json.")
    data_dir: str | None = None

    @field_validator("compare_methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        from explainlm.services.common import check_methods

        if value:  # none is allowed: the trusted method and random only
            check_methods(value, {})  # before any model is trained or loaded
        return value

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, value: list[str]) -> list[str]:
        from explainlm.compression.spec import parse_variant

        for v in value:
            parse_variant(v)  # a one-line error now, not after training
        return value

    def settings(self) -> dict[str, Any]:
        """The request with the domain's defaults filled in."""
        defaults = DOMAINS[self.domain]
        spec = self.spec()
        return {**defaults, **{k: v for k, v in spec.items() if v is not None},
                "output": self.output or f"cases/{self.domain}"}  # fmt: skip

    def resolved(self) -> Any:
        """A copy with every domain default filled in (what the recipe reads)."""
        s = self.settings()
        return self.model_copy(update={k: s[k] for k in type(self).model_fields if k in s})


@dataclass
class CaseResult:
    run_id: str | None
    domain: str
    document: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def to_json_doc(self) -> dict[str, Any]:
        return json_safe({"run_id": self.run_id, **self.document, "files": self.files})


def write_case(doc: dict[str, Any], folder: str) -> list[str]:
    """``case.json`` and the self-contained ``report.html`` in ``folder``."""
    from explainlm.report.case import case_html
    from explainlm.report.html import write_path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "case.json").write_text(json.dumps(json_safe(doc), indent=1), encoding="utf-8")
    report = write_path(out / "report.html", case_html(json_safe(doc)))
    return [str((out / "case.json").resolve()), str(report)]


def run(request: CaseRequest, ctx: ServiceContext) -> CaseResult:
    """Run the domain's recipe and write its report (see the module docstring)."""
    req = request.resolved()
    recipe = RECIPES[req.domain]
    recipe.check(req)  # data present, options consistent: before any model loads
    started = time.perf_counter()
    with ctx.recorded_run(request, model=req.model) as run_ctx:
        doc = recipe.build(req, ctx)
        doc.update(run_id=run_ctx.run_id, seconds=time.perf_counter() - started,
                   settings=json_safe(req.spec()))  # fmt: skip
        doc = json_safe(doc)
        files = write_case(doc, str(req.output))
        run_ctx.summary.update({"domain": req.domain, "figures": doc["figures"],
                                "summary": doc["summary"], "files": files})  # fmt: skip
        if ctx.store is not None:
            ctx.store.put_items(run_ctx.run_id, ITEM_KIND, {"report": doc})
    return CaseResult(run_ctx.run_id, req.domain, doc, files)


def load_case(store: Any, run_id: str) -> dict[str, Any]:
    """The case document stored with run ``run_id`` (what its report was rendered from)."""
    from explainlm.errors import UserError

    items = store.get_items(run_id, ITEM_KIND)
    if "report" not in items:
        raise UserError(f"run {run_id} holds no case report")
    return items["report"]
