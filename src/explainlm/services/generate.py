"""Generate: a continuation and the attribution of every token (``explainlm generate``,
``POST /api/generate``).

All methods run in one :func:`explainlm.generation.explain_generation` call, so the prompt is
generated (or teacher-forced) once however many methods explain it.

>>> GenerateRequest(prompt="The capital of France is", methods="occlusion").max_new_tokens
10
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext, ServiceRequest, json_safe
from explainlm.services.common import (
    CsvList,
    MethodParams,
    ModelOptions,
    PrecisionOptions,
    check_methods,
    check_output_file,
)

DEFAULT_METHODS = ["auto"]


class GenerateRequest(ModelOptions, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm generate``."""

    command: ClassVar[str] = "generate"
    path_fields: ClassVar[tuple[str, ...]] = ("html",)

    prompt: str = Field(description="The prompt.")
    methods: CsvList = Field(default_factory=lambda: list(DEFAULT_METHODS))
    max_new_tokens: int = Field(10, ge=1, le=4096, description="Tokens to generate.")
    target_text: str | None = Field(
        None, description="Explain this continuation (teacher forcing) instead of generating."
    )
    target: Literal["token_logprob", "token_prob", "sequence_logprob"] = "token_logprob"
    contrast: str | None = Field(
        None, description="Foil text: explain log p(token) − log p(foil token)."
    )
    granularity: Literal["word", "token"] = "word"
    chat: bool = Field(False, description="Wrap the prompt in the chat template.")
    sample: bool = Field(False, description="Seeded sampling instead of greedy decoding.")
    seed: int = Field(0, description="Sampling seed.")
    params: MethodParams = Field(default_factory=dict, description="Method parameters.")
    html: str | None = Field(None, description="Write a self-contained HTML report here.")
    summary: bool = Field(False, description="Add each attribution's plain-language summary.")
    check: bool = Field(
        True, description="The faithfulness check on every attribution (false: off; auto keeps it)."
    )
    forbid: CsvList = Field(default_factory=list, description="Methods auto must never use.")

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise UserError("the prompt is empty")
        return v

    @model_validator(mode="after")
    def _check(self) -> GenerateRequest:
        from explainlm.services.explain import check_forbidden

        check_methods(self.methods, self.params)
        check_forbidden(self.methods, self.forbid)
        check_output_file(self.html, "--html")
        return self


@dataclass
class GenerateResult:
    run_id: str | None
    model: str
    prompt: str
    attributions: Any  # a GenerationSet: one per method
    with_summaries: bool = False
    report: str | None = None

    @property
    def continuation(self) -> str:
        return self.attributions[0].continuation if len(self.attributions) else ""

    def to_json_doc(self) -> dict[str, Any]:
        """``{"run_id", "model", "prompt", "attributions": [...]}``."""
        docs = [a.to_json_doc() for a in self.attributions]
        if self.with_summaries:
            from explainlm.report.matrix import summary

            for d, a in zip(docs, self.attributions, strict=True):
                d["summary"] = summary(a)
                d["continuation"] = a.continuation
        return json_safe(
            {
                "run_id": self.run_id,
                "model": self.model,
                "prompt": self.prompt,
                "attributions": docs,
            }
        )


def attribute(request: GenerateRequest, generator: Any, progress: Any = None) -> Any:
    """Generate (or teacher-force) and attribute with every method in one call."""
    from explainlm.generation import explain_generation
    from explainlm.services.explain import auto_params

    return explain_generation(
        [request.prompt],
        generator,
        request.methods,
        max_new_tokens=request.max_new_tokens,
        target_texts=[request.target_text] if request.target_text else None,
        target=request.target,
        foil=request.contrast,
        granularity=request.granularity,
        do_sample=request.sample,
        seed=request.seed,
        method_params=auto_params(request.methods, request.params, request.forbid),
        max_batch_tokens=request.max_batch_tokens,
        progress=progress,
        precision=request.precision,
        check=request.check,
    )


def run(request: GenerateRequest, ctx: ServiceContext) -> GenerateResult:
    """Generate, attribute, store the attributions (items of kind ``generation``), report."""
    from explainlm.models import Generator

    gen = ctx.task(request.model, "generator", chat=request.chat)
    if not isinstance(gen, Generator):  # pragma: no cover - make_task guarantees it
        raise UserError(f"{request.model} cannot generate")
    with (
        ctx.recorded_run(request, model=request.model) as run,
        ctx.model_lock(request.model),
        ctx.progress.stage_of("attributing", 1) as progress,
    ):
        inner = progress.child(1)
        res = attribute(request, gen, inner)
        inner.close()
        progress.advance(1)
        res.run_id = run.run_id
        result = GenerateResult(run.run_id, request.model, request.prompt, res, request.summary)
        if ctx.store is not None:
            items = {f"{k:04d}": a.to_dict() for k, a in enumerate(res)}
            ctx.store.put_items(run.run_id, "generation", items)
        run.summary = {"continuation": result.continuation, "methods": request.methods}
        if request.html:
            from explainlm.report.html import write_path
            from explainlm.report.matrix import generation_report

            meta = {"model": request.model, "run": run.run_id}
            result.report = str(write_path(request.html, generation_report(res, meta)))
            run.summary["report"] = result.report
    return result
