"""Request bodies of the JSON API: the CLI's options as JSON fields.

Field names follow the CLI (``--max-new-tokens`` → ``max_new_tokens``); lists may be given as JSON
arrays or as the CLI's comma-separated strings. ``"async": true`` returns ``{"job_id"}`` at once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS

ListOrCsv = list[str] | str | None


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = Field(None, description="A model name from GET /api/models.")
    run_async: bool = Field(
        False, alias="async", description="Return {job_id} at once; poll GET /api/jobs/{id}."
    )


class _TextsRequest(_Request):
    text: str | None = Field(None, description="One text (or use texts).")
    texts: list[str] | None = Field(None, description="Several texts.")
    task: Literal["sequence_classifier", "zero_shot", "generator"] | None = Field(
        None, description="Default: the model's own (zero_shot for a causal LM)."
    )
    labels: ListOrCsv = Field(None, description="Zero-shot labels, e.g. ['negative', 'positive'].")
    template: str | None = Field(None, description="Zero-shot prompt template with {text}.")
    calibrate: bool | None = None
    chat: bool | None = None
    truncate: bool = Field(True, description="False: error on texts over the model's limit.")

    _labels = field_validator("labels", mode="before")(_csv)

    def all_texts(self) -> list[str]:
        return ([self.text] if self.text is not None else []) + list(self.texts or [])


class PredictRequest(_TextsRequest):
    """``POST /api/predict`` — like ``explainlm predict --json``."""

    max_new_tokens: int = Field(20, ge=1, description="Generator task: tokens to generate.")


class ExplainRequest(_TextsRequest):
    """``POST /api/explain`` — like ``explainlm explain --json``."""

    methods: ListOrCsv = Field(None, description="Default: integrated_gradients, occlusion.")
    target: str | None = Field(None, description="LABEL, or prob|logit|log_odds[:LABEL].")
    contrast: str | None = Field(None, description="LABEL:FOIL — explain the logit difference.")
    granularity: Literal["word", "token"] = "word"
    params: dict[str, dict[str, Any]] | list[str] | None = Field(
        None,
        description="Method parameters: {'lime': {'n_samples': 200}} or ['lime.n_samples=200'].",
    )
    max_batch_tokens: int = Field(DEFAULT_MAX_BATCH_TOKENS, ge=16)
    summary: bool = Field(False, description="Add each explanation's plain-language summary.")
    faithfulness: bool = Field(
        False, description="Add comprehensiveness and sufficiency (ERASER AOPC) per explanation."
    )

    _methods = field_validator("methods", mode="before")(_csv)


class GenerateRequest(_Request):
    """``POST /api/generate`` — like ``explainlm generate --json``."""

    prompt: str | None = Field(None, description="The prompt (or use text).")
    text: str | None = Field(None, description="Alias of prompt.")
    methods: ListOrCsv = Field(None, description="Default: occlusion.")
    max_new_tokens: int = Field(10, ge=1)
    target_text: str | None = Field(None, description="Explain this continuation instead.")
    target: Literal["token_logprob", "token_prob", "sequence_logprob"] = "token_logprob"
    contrast: str | None = Field(None, description="Foil text.")
    granularity: Literal["word", "token"] = "word"
    chat: bool = False
    sample: bool = False
    seed: int = 0
    params: dict[str, dict[str, Any]] | list[str] | None = None
    max_batch_tokens: int = Field(DEFAULT_MAX_BATCH_TOKENS, ge=16)
    summary: bool = Field(False, description="Add each attribution's plain-language summary.")

    _methods = field_validator("methods", mode="before")(_csv)

    def the_prompt(self) -> str | None:
        return self.prompt if self.prompt is not None else self.text


class BenchmarkRequest(_Request):
    """``POST /api/benchmark`` — like ``explainlm benchmark --json``; always a background job."""

    dataset: str = Field("sst-rationales", description="A built-in dataset name (no paths).")
    split: str | None = None
    methods: ListOrCsv = Field(
        None, description="Default: integrated_gradients, occlusion, random."
    )
    metrics: ListOrCsv = Field(None, description="Default: comprehensiveness, sufficiency, ….")
    params: dict[str, dict[str, Any]] | list[str] | None = None
    limit: int | None = Field(20, ge=1)
    labels: ListOrCsv = None
    group: str | None = None
    test: str = "wilcoxon"
    seed: int = 0

    _lists = field_validator("methods", "metrics", "labels", mode="before")(_csv)
