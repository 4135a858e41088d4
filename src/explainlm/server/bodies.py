"""Request bodies of the JSON API: the service requests themselves, plus server-only fields.

Field names follow the CLI (``--max-new-tokens`` → ``max_new_tokens``); lists may be given as JSON
arrays or as the CLI's comma-separated strings. ``"async": true`` returns ``{"job_id"}`` at once.
``model`` names one of the server's models (default: its first). Fields that read or write files
on the server (``input``, ``html``, ``output``, …) are refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from explainlm.services.benchmark import BenchmarkRequest
from explainlm.services.common import CsvList
from explainlm.services.explain import ExplainRequest
from explainlm.services.generate import GenerateRequest
from explainlm.services.predict import PredictRequest


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
