"""Generate: a continuation and the attribution of every token (``explainlm generate``,
``POST /api/generate``), for one prompt or a file of prompts (one per row).

All methods run in one :func:`explainlm.generation.explain_generation` call per chunk of prompts
(:func:`attribute`: the unit a chunk or a Ray shard runs), so each prompt is generated (or
teacher-forced) once however many methods explain it. Each chunk is stored as it finishes.

>>> GenerateRequest(prompt="The capital of France is", methods="occlusion").max_new_tokens
10
>>> GenerateRequest(input="prompts.txt").chunk_size
16
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext, ServiceRequest, json_safe
from explainlm.services.common import (
    CsvList,
    Limit,
    MethodParams,
    ModelOptions,
    PrecisionOptions,
    check_methods,
    check_output_file,
    gather_texts,
)
from explainlm.services.precision_plan import pin_precision

DEFAULT_METHODS = ["auto"]
CHUNK = 16  # prompts per explain_generation() call and stored chunk


class GenerateRequest(ModelOptions, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm generate``."""

    command: ClassVar[str] = "generate"
    path_fields: ClassVar[tuple[str, ...]] = ("input", "html")

    prompt: str | None = Field(None, description="The prompt (or use input).")
    input: str | None = Field(None, description="TSV/CSV/JSONL/TXT/Parquet file: a prompt per row.")
    text_column: str = Field("text", description="Prompt column of the input file.")
    limit: Limit = Field(None, description="Only the first N prompts of the input file.")
    encoding: str | None = Field(None, description="Text encoding of the input file (UTF-8).")
    chunk_size: int = Field(CHUNK, ge=1, description="Prompts per generation call (and shard).")
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
    def _not_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise UserError("the prompt is empty")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str | None) -> str | None:
        from explainlm.datasets.tables import text_encoding

        return None if v is None else text_encoding(v)

    @model_validator(mode="after")
    def _check(self) -> GenerateRequest:
        from explainlm.services.explain import check_forbidden

        if (self.prompt is None) == (self.input is None):
            raise UserError("give a PROMPT or --input FILE of prompts (one per row), not both")
        if self.input is None and self.limit is not None:
            raise UserError("--limit applies to --input FILE")
        check_methods(self.methods, self.params)
        check_forbidden(self.methods, self.forbid)
        check_output_file(self.html, "--html")
        return self

    def read_prompts(self) -> list[str]:
        """The prompt, or the input file's prompts (cut to ``limit``); none empty."""
        if self.prompt is not None:
            return [self.prompt]
        return gather_texts(None, self.input, self.text_column, self.limit, self.encoding)


@dataclass
class GenerateResult:
    run_id: str | None
    model: str
    prompt: str | None  # None for a file of prompts (``prompts``)
    attributions: Any  # a GenerationSet, prompt-major: prompt 0 by every method, prompt 1, …
    with_summaries: bool = False
    report: str | None = None
    prompts: list[str] | None = None  # the file's prompts, in order

    @property
    def continuation(self) -> str:
        return self.attributions[0].continuation if len(self.attributions) else ""

    def to_json_doc(self) -> dict[str, Any]:
        """``{"run_id", "model", "prompt", "attributions": [...]}`` (a file of prompts: ``prompt``
        is ``None`` and ``prompts`` lists them; each attribution names its own prompt)."""
        docs = [a.to_json_doc() for a in self.attributions]
        if self.with_summaries:
            from explainlm.report.matrix import summary

            for d, a in zip(docs, self.attributions, strict=True):
                d["summary"] = summary(a)
                d["continuation"] = a.continuation
        doc = {"run_id": self.run_id, "model": self.model, "prompt": self.prompt}
        if self.prompts is not None:
            doc["prompts"] = self.prompts
        return json_safe({**doc, "attributions": docs})


def attribute(
    request: GenerateRequest, generator: Any, prompts: Sequence[str], progress: Any = None
) -> Any:
    """Generate (or teacher-force) and attribute ``prompts`` with every method in one call (the
    unit a chunk, or a shard of a Ray job, runs): a GenerationSet, prompt-major."""
    from explainlm.generation import explain_generation
    from explainlm.services.explain import auto_params

    targets = [request.target_text] * len(prompts) if request.target_text else None
    return explain_generation(
        list(prompts),
        generator,
        request.methods,
        max_new_tokens=request.max_new_tokens,
        target_texts=targets,
        target=request.target,
        foil=request.contrast,
        granularity=request.granularity,
        do_sample=request.sample,
        seed=request.seed,
        method_params=auto_params(request.methods, request.params, request.forbid),
        max_batch_tokens=request.max_batch_tokens,
        progress=progress,
        precision=request.pinned_precision(),
        check=request.check,
    )


def item_key(row: int, seq: int) -> str:
    """The run store's key of the attribution of prompt ``row`` by method ``seq``."""
    return f"{row:06d}-{seq:03d}"


def run(request: GenerateRequest, ctx: ServiceContext) -> GenerateResult:
    """Generate and attribute chunk by chunk, storing each chunk's attributions (items of kind
    ``generation``); the HTML report of them all."""
    from explainlm.generation import GenerationSet
    from explainlm.models import Generator

    prompts = request.read_prompts()  # a bad file is an error before the model loads
    gen = ctx.task(request.model, "generator", chat=request.chat)
    if not isinstance(gen, Generator):  # pragma: no cover - make_task guarantees it
        raise UserError(f"{request.model} cannot generate")
    n_methods = len(request.methods)
    with (
        ctx.recorded_run(request, model=request.model, extra={"n_prompts": len(prompts)}) as run,
        ctx.model_lock(request.model),
        ctx.progress.stage_of("attributing", len(prompts)) as progress,
    ):
        request = pin_precision(request, gen, ctx, run)
        done: list[Any] = []
        for start in range(0, len(prompts), request.chunk_size):
            chunk = prompts[start : start + request.chunk_size]
            inner = progress.child(len(chunk))
            part = attribute(request, gen, chunk, inner)
            inner.close()
            if ctx.store is not None:
                items = {item_key(start + i // n_methods, i % n_methods): a.to_dict()
                         for i, a in enumerate(part)}  # fmt: skip
                ctx.store.put_items(run.run_id, "generation", items)
            done += list(part)
            progress.advance(len(chunk))
        attributions = GenerationSet(done, run_id=run.run_id)
        result = merged_result(request, run.run_id, attributions, prompts)
        run.summary = {"continuation": result.continuation, "methods": request.methods,
                       "n_prompts": len(prompts)}  # fmt: skip
        if result.report:
            run.summary["report"] = result.report
    return result


def merged_result(
    request: GenerateRequest, run_id: str | None, attributions: Any, prompts: Sequence[str]
) -> GenerateResult:
    """The result of every prompt's attributions (in order), with its HTML report if asked."""
    listed = None if request.prompt is not None else list(prompts)
    result = GenerateResult(run_id, request.model, request.prompt, attributions,
                            request.summary, None, listed)  # fmt: skip
    if request.html:
        from explainlm.report.html import write_path
        from explainlm.report.matrix import generation_report

        meta = {"model": request.model, "run": run_id or ""}
        result.report = str(write_path(request.html, generation_report(attributions, meta)))
    return result
