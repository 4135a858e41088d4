"""Request bodies of the JSON API: the service requests themselves, plus server-only fields.

Field names follow the CLI (``--max-new-tokens`` → ``max_new_tokens``); lists may be given as JSON
arrays or as the CLI's comma-separated strings. ``"async": true`` returns ``{"job_id"}`` at once.
``model`` names one of the server's models (default: its first). Fields that read or write files
on the server (``input``, ``html``, ``output``, …) are refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from explainlm.errors import UserError
from explainlm.services.audit import (
    BiosAuditRequest,
    CounterfactualAuditRequest,
    FairnessAuditRequest,
    LMBiasAuditRequest,
)
from explainlm.services.benchmark import BenchmarkRequest
from explainlm.services.common import CsvList
from explainlm.services.compare_request import CompareRequest
from explainlm.services.explain import ExplainRequest
from explainlm.services.generate import GenerateRequest
from explainlm.services.predict import PredictRequest
from explainlm.services.whatif_requests import AnchorRequest, CounterfactualRequest, EditRequest


class ServerFields(BaseModel):
    """What only the web API has: ``async``, and ``model`` defaulting to the server's first."""

    server_fields: ClassVar[tuple[str, ...]] = ("run_async", "text")

    model: str | None = Field(None, description="A model name from GET /api/models.")
    run_async: bool = Field(
        False, alias="async", description="Return {job_id} at once; poll GET /api/jobs/{id}."
    )

    def spec(self) -> dict[str, Any]:
        """The job spec stored with the run, without the server-only fields."""
        return {k: v for k, v in super().spec().items() if k not in self.server_fields}  # type: ignore[misc]


class _Texts(BaseModel):
    text: str | None = Field(None, description="One text (or use texts).")

    @model_validator(mode="after")
    def _merge_text(self) -> Any:
        if self.text is not None:
            self.texts = [self.text, *self.texts]  # type: ignore[attr-defined]
            self.text = None
        return self


class PredictBody(ServerFields, _Texts, PredictRequest):
    """``POST /api/predict`` — like ``explainlm predict --json``."""


class ExplainBody(ServerFields, _Texts, ExplainRequest):
    """``POST /api/explain`` — like ``explainlm explain --json``; every method in one call.

    ``summary``/``faithfulness`` add each explanation's plain-language summary and its
    comprehensiveness and sufficiency (ERASER AOPC).
    """


class GenerateBody(ServerFields, GenerateRequest):
    """``POST /api/generate`` — like ``explainlm generate --json``; every method in one call."""

    @model_validator(mode="before")
    @classmethod
    def _text_is_prompt(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" not in data and "text" in data:
            data = {**data, "prompt": data["text"]}
            del data["text"]
        return data


class BenchmarkBody(ServerFields, BenchmarkRequest):
    """``POST /api/benchmark`` — like ``explainlm benchmark --json``; always a background job.

    ``dataset`` is a built-in dataset name (no paths).
    """

    limit: int | None = Field(20, description="Only the first N examples.")
    metrics: CsvList = Field(
        default_factory=lambda: ["comprehensiveness", "sufficiency"],
        description="Metrics (default: comprehensiveness, sufficiency).",
    )


# ---------------------------------------------------------------------------------- what-if
class _TextFirst(BaseModel):
    """``text`` is put in front of ``texts`` before the request's own checks run."""

    text: str | None = Field(None, description="One text (or use texts).")

    @model_validator(mode="before")
    @classmethod
    def _text_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("text") is not None:
            texts = data.get("texts") or []
            data = {**data, "texts": [data["text"], *texts], "text": None}
        return data


class EditBody(ServerFields, EditRequest):
    """``POST /api/whatif/edit`` — the edited text's prediction next to the original's (fast)."""

    server_fields: ClassVar[tuple[str, ...]] = ("run_async",)


class CounterfactualBody(ServerFields, _TextFirst, CounterfactualRequest):
    """``POST /api/whatif/counterfactual`` — like ``explainlm counterfactual --json``; a job.

    ``lm`` (the infill and perplexity model) names a configured causal LM (default: the first).
    """

    path_fields: ClassVar[tuple[str, ...]] = ("input",)
    lm: str | None = Field(None, description="Causal LM for infill and fluency (a model name).")


class AnchorBody(ServerFields, _TextFirst, AnchorRequest):
    """``POST /api/whatif/anchor`` — like ``explainlm anchor --json``; a job."""

    path_fields: ClassVar[tuple[str, ...]] = ("input",)
    lm: str | None = Field(None, description="Causal LM of the llm perturbation (a model name).")


# ------------------------------------------------------------------------------------ audits
class UploadedTable(BaseModel):
    """A data file sent with the request (the server keeps it under ``$EXPLAINLM_HOME/uploads``,
    named by its content's hash, so the audit's stored spec names a file that still exists)."""

    name: str = Field(
        min_length=1, max_length=200, description="File name; .csv, .tsv, .jsonl or .txt."
    )
    content: str = Field(min_length=1, description="The file's text.")


class AuditFields(ServerFields):
    """What every web audit adds: an uploaded table, and a bounded ``limit``."""

    server_fields: ClassVar[tuple[str, ...]] = ("run_async", "text", "upload")
    path_fields: ClassVar[tuple[str, ...]] = ("html",)
    upload: UploadedTable | None = Field(
        None, description="The data file itself (instead of a built-in data set)."
    )
    limit: int | None = Field(200, ge=1, description="Only the first N items (texts, pairs).")


class FairnessAuditBody(AuditFields, FairnessAuditRequest):
    """``POST /api/audit/fairness`` — like ``explainlm audit fairness --json``; a job.

    ``data``: ``biosbias[:train|test|all]``, or send the table as ``upload``. Without ``model`` the
    predictions are read from ``prediction_column``.
    """

    data: str | None = Field(None, description="biosbias[:SPLIT], or leave empty and upload.")


class CounterfactualAuditBody(AuditFields, CounterfactualAuditRequest):
    """``POST /api/audit/counterfactual`` — like ``explainlm audit counterfactual --json``; a job.

    ``data``: ``eec`` (the Equity Evaluation Corpus), or upload a table of texts.
    """


class LMBiasAuditBody(AuditFields, LMBiasAuditRequest):
    """``POST /api/audit/lm-bias`` — like ``explainlm audit lm-bias --json``; a job.

    The ``pairs`` benchmark reads an uploaded CSV/TSV/JSONL of ``sent_more``, ``sent_less``.
    """

    path_fields: ClassVar[tuple[str, ...]] = ("html", "pairs_file")
    classifier: str | None = Field(None, description="BOLD's sentiment classifier (a model name).")

    def model_post_init(self, ctx: Any) -> None:
        """The pairs file is uploaded (the route sets ``pairs_file`` to the kept copy)."""
        if (self.benchmark == "pairs") != (self.upload is not None or self.pairs_file is not None):
            raise UserError(
                "the pairs benchmark reads your minimal pairs: upload a CSV/TSV/JSONL file with "
                "sent_more, sent_less (and only that benchmark takes a file)"
            )
        if self.pairs_file is None and self.upload is not None:
            return  # the file is checked when the job reads it
        super().model_post_init(ctx)


class BiosAuditBody(AuditFields, BiosAuditRequest):
    """``POST /api/audit/bios`` — like ``explainlm audit bios --json``; a job."""


# ----------------------------------------------------------------------------------- compare
class CompareBody(CompareRequest):
    """``POST /api/compare`` — like ``explainlm compare --json``; always a background job.

    ``reference`` names a configured model (default: the server's first); ``dataset`` is a built-in
    dataset name (no paths).
    """

    path_fields: ClassVar[tuple[str, ...]] = ("data_dir",)
    reference: str | None = Field(None, description="A model name from GET /api/models.")  # type: ignore[assignment]
    limit: int | None = Field(20, ge=1, description="Only the first N examples.")
