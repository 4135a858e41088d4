"""The requests of the what-if jobs (:mod:`explainlm.services.whatif`): the dataset jobs
(:class:`CounterfactualRequest`, :class:`AttackRequest`, :class:`AnchorRequest`, which share
:class:`TextsRequest`) and the what-if page's single-text requests (:class:`PredictExplainRequest`,
:class:`EditRequest`). Every option is checked here, before any model loads.

>>> AnchorRequest(texts=["a fine film"]).job_spec()["model"]
'smollm2-135m'
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import ServiceRequest

DEFAULT_MODEL = "smollm2-135m"


class TextsRequest(ServiceRequest):
    """Options every what-if job shares: the model, the texts, and the dataset-job plumbing."""

    model: str = DEFAULT_MODEL
    texts: list[str] = Field(default_factory=list)
    input: str | None = None
    text_column: str = "text"
    label_column: str | None = None
    label_names: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    labels: list[str] | None = None
    template: str | None = None
    max_batch_tokens: int = Field(DEFAULT_MAX_BATCH_TOKENS, ge=16)
    seed: int = 0
    chunk_size: int = Field(32, ge=1)
    resume: str | None = None
    similarity_model: str = "minilm-l6"

    @model_validator(mode="after")
    def _texts_given(self) -> TextsRequest:
        from explainlm.whatif.jobs import one_word_reason

        if not self.texts and not self.input:
            raise ValueError("no text given: pass texts or an input file")
        for i, t in enumerate(self.texts):
            why = one_word_reason(t) if t.strip() else "is empty"
            if why:
                raise ValueError(f"text {i + 1} ({t.strip()[:40]!r}) {why}")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("duplicate zero-shot labels")
        return self

    #: options used only when the finished texts are summarised: a resume may change them (a
    #: finished run resumed with new ones is summarised again, nothing is searched twice)
    finish_only: ClassVar[tuple[str, ...]] = ()

    def job_spec(self) -> dict[str, Any]:
        """What must match for a run to be resumed with this request."""
        skip = ("resume", "chunk_size", *self.finish_only)
        return {k: v for k, v in self.spec().items() if k not in skip}


def _positive_budget(what: str, v: int) -> int:
    if v < 1:
        raise ValueError(f"the {what} must be at least 1, got {v}")
    return v


class CounterfactualRequest(TextsRequest):
    command: ClassVar[str] = "counterfactual"
    finish_only: ClassVar[tuple[str, ...]] = ("evaluate",)
    target: str | None = None
    margin: float | None = Field(None, gt=0, le=1)
    n: int = Field(3, ge=1, le=50)
    max_edits: int = Field(4, ge=1, le=20)
    max_queries: int = 400
    positions: int = Field(6, ge=1)
    per_source: int = Field(6, ge=1)
    sources: list[str] = Field(default_factory=lambda: ["llm", "embedding", "delete"])
    beam: int = Field(4, ge=1)
    expand: int = Field(3, ge=1)
    lm: str = "smollm2-135m"
    embeddings: str = "minilm-l6"
    infill_prompt: str = "Here is a {label} text:\n"
    quality: bool = True
    evaluate: list[str] = Field(default_factory=list)

    @field_validator("max_queries")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("query budget", v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        from explainlm.whatif.candidates import SOURCES

        bad = [s for s in v if s not in SOURCES]
        if bad or not v:
            raise ValueError(f"unknown candidate source(s) {bad}; known: {', '.join(SOURCES)}")
        return v

    @field_validator("infill_prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        try:
            v.format(label="x")
        except (KeyError, IndexError, ValueError):
            raise ValueError("the infill prompt may only use the {label} placeholder") from None
        return v


class AttackRequest(TextsRequest):
    command: ClassVar[str] = "attack"
    kind: str = "word"
    max_queries: int = 200
    min_similarity: float = Field(0.8, ge=0, le=1)
    max_perturbed: float = Field(0.3, gt=0, le=1)
    ranking: str = "gradient"
    neighbours: int = Field(20, ge=1)
    min_cosine: float = Field(0.3, ge=-1, le=1)
    top_k: int = Field(8, ge=1)
    max_edit_distance: int = Field(30, ge=1)

    @field_validator("max_queries")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("query budget", v)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from explainlm.whatif.attacks import ATTACKS

        if v not in ATTACKS:
            raise ValueError(f"unknown attack {v!r}; known: {', '.join(ATTACKS)}")
        return v

    @field_validator("ranking")
    @classmethod
    def _ranking(cls, v: str) -> str:
        from explainlm.whatif.attacks import RANKINGS

        if v not in RANKINGS:
            raise ValueError(f"unknown ranking {v!r}; known: {', '.join(RANKINGS)}")
        return v


class AnchorRequest(TextsRequest):
    command: ClassVar[str] = "anchor"
    threshold: float = Field(0.95, gt=0, lt=1)
    delta: float = Field(0.1, gt=0, lt=1)
    epsilon: float = Field(0.15, gt=0, lt=1)
    batch_size: int = Field(25, ge=1)
    beam_size: int = Field(4, ge=1)
    max_anchor_size: int | None = Field(None, ge=1)
    perturbation: str = "unk"
    p: float = Field(0.5, gt=0, lt=1)
    max_samples: int = 5000
    validation_samples: int = Field(0, ge=0)
    llm_candidates: int = Field(10, ge=1)
    lm: str = "smollm2-135m"

    @field_validator("max_samples")
    @classmethod
    def _budget(cls, v: int) -> int:
        return _positive_budget("sample budget", v)

    @field_validator("perturbation")
    @classmethod
    def _perturbation(cls, v: str) -> str:
        from explainlm.whatif.anchors import PERTURBATIONS

        if v not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {v!r}; known: {', '.join(PERTURBATIONS)}")
        return v


class EditSpec(BaseModel):
    """Replace word ``index`` of the text by ``replacement`` ("" deletes it)."""

    index: int = Field(ge=0)
    replacement: str = ""


class PredictExplainRequest(ServiceRequest):
    """The page's first view: the prediction and an explanation with how far to trust it."""

    command: ClassVar[str] = "whatif-predict"
    model: str = DEFAULT_MODEL
    text: str = Field(min_length=1)
    labels: list[str] | None = None
    template: str | None = None
    method: str = "occlusion"
    record: bool = False


class EditRequest(ServiceRequest):
    """ "What if this word were different?": the edited text's prediction next to the original's."""

    command: ClassVar[str] = "whatif-edit"
    model: str = DEFAULT_MODEL
    text: str = Field(min_length=1)
    edits: list[EditSpec] = Field(default_factory=list)
    edited_text: str | None = None
    labels: list[str] | None = None
    template: str | None = None
    record: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> EditRequest:
        if bool(self.edits) == (self.edited_text is not None):
            raise ValueError("give either edits or edited_text")
        if len({e.index for e in self.edits}) != len(self.edits):
            raise ValueError("two edits of the same word")
        return self
