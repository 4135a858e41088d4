"""Explain: attributions of classifier predictions (``explainlm explain``, ``POST /api/explain``).

All methods run in one :func:`explainlm.attribution.explain` call per chunk of texts, so each text
is encoded and predicted once however many methods explain it. Each chunk is stored as soon as it
is done.

>>> req = ExplainRequest(texts=["A fine film."], methods="occlusion,lime", params=["lime.n_samples=50"])
>>> req.methods, req.params
(['occlusion', 'lime'], {'lime': {'n_samples': 50}})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext, ServiceRequest, json_safe
from explainlm.services.common import (
    BudgetOptions,
    CsvList,
    MethodParams,
    PrecisionOptions,
    TaskOptions,
    TextsInput,
    check_methods,
)

DEFAULT_METHODS = ["integrated_gradients", "occlusion"]
CHUNK = 64  # texts per explain() call and stored chunk
FAITHFULNESS_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # ERASER's top-k% bins


class ExplainRequest(TaskOptions, TextsInput, BudgetOptions, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm explain``."""

    command: ClassVar[str] = "explain"
    path_fields: ClassVar[tuple[str, ...]] = ("input", "html")

    methods: CsvList = Field(default_factory=lambda: list(DEFAULT_METHODS))
    target: str | None = Field(
        None, description="LABEL, or prob|logit|log_odds[:LABEL] (default: the predicted label)."
    )
    contrast: str | None = Field(None, description="LABEL:FOIL — explain the logit difference.")
    granularity: Literal["word", "token"] = "word"
    params: MethodParams = Field(
        default_factory=dict,
        description="Method parameters: {'lime': {'n_samples': 200}} or ['lime.n_samples=200'].",
    )
    truncate: bool = Field(True, description="False: error on over-long texts.")
    mixed_precision: bool = Field(False, description="bfloat16 autocast (GPU).")
    html: str | None = Field(None, description="Write a self-contained HTML report here.")
    summary: bool = Field(False, description="Add each explanation's plain-language summary.")
    faithfulness: bool = Field(
        False, description="Add comprehensiveness and sufficiency (ERASER AOPC) per explanation."
    )

    @model_validator(mode="after")
    def _check(self) -> ExplainRequest:
        from explainlm.targets import parse_target

        check_methods(self.methods, self.params)
        parse_target(self.target, contrast=self.contrast)  # syntax only; labels need the model
        return self


@dataclass
class ExplainResult:
    run_id: str | None
    model: str
    explanations: Any  # an ExplanationSet, text-major: text 0 with every method, text 1, …
    faithfulness: list[dict[str, Any]] | None = None
    with_summaries: bool = False
    report: str | None = None

    def to_json_doc(self) -> dict[str, Any]:
        """``{"run_id", "model", "explanations": [...], "faithfulness"?: [...]}``."""
        docs = [e.to_json_doc() for e in self.explanations]
        if self.with_summaries:
            from explainlm.report.heatmap import summary

            for d, e in zip(docs, self.explanations, strict=True):
                d["summary"] = summary(e)
        doc: dict[str, Any] = {"run_id": self.run_id, "model": self.model, "explanations": docs}
        if self.faithfulness is not None:
            doc["faithfulness"] = self.faithfulness
        return json_safe(doc)


def explain_texts(
    request: ExplainRequest, classifier: Any, texts: Sequence[str], progress: Any = None
) -> Any:
    """The request's methods on ``texts`` in one call (the unit a chunk or a Ray batch runs)."""
    from explainlm.attribution import explain

    return explain(
        list(texts),
        classifier,
        request.methods,
        target=request.target,
        contrast=request.contrast,
        granularity=request.granularity,
        method_params=request.params,
        max_batch_tokens=request.pass_tokens(),
        truncation=request.truncate,
        progress=progress,
        mixed_precision=request.mixed_precision,
        precision=request.precision,
    )


def faithfulness_rows(
    explanations: Sequence[Any], classifier: Any, max_batch_tokens: int
) -> list[dict[str, Any]]:
    """Comprehensiveness and sufficiency of each explanation (ERASER AOPC, top 1/5/10/20/50 %).

    f is the probability of the explained label; a bin keeps at least one unit (``ceil``).
    """
    from explainlm.evaluation import evaluate

    metrics = ("comprehensiveness", "sufficiency")
    params = {m: {"bins": FAITHFULNESS_BINS, "rounding": "ceil"} for m in metrics}
    res = evaluate(
        list(explanations),
        metrics,
        classifier,
        metric_params=params,
        example_ids=list(range(len(explanations))),
        max_batch_tokens=max_batch_tokens,
        agreement=False,
    )
    out: list[dict[str, Any]] = [
        {"index": i, "method": e.method, "source": "explainlm.evaluation"}
        for i, e in enumerate(explanations)
    ]
    for r in res.rows:
        out[int(r["example"])][r["metric"]] = r.get("value")
    return json_safe(out)


def run(request: ExplainRequest, ctx: ServiceContext) -> ExplainResult:
    """Explain every text with every method, storing each chunk; optional faithfulness and HTML."""
    from explainlm.explanation import ExplanationSet
    from explainlm.models import Classifier

    texts = request.read_texts()
    clf = ctx.task(request.model, request.task, **request.task_options())
    if not isinstance(clf, Classifier):
        raise UserError(
            f"{request.model} as {clf.task} is not a classifier: use generate to explain generation"
        )
    result = ExplainResult(None, request.model, ExplanationSet([]), None, request.summary)
    extra = {"n_texts": len(texts), **clf.describe(), "precision": request.precision}
    with (
        ctx.models.lock(request.model),
        ctx.recorded_run(request, model=request.model, extra=extra) as run,
    ):
        result.run_id = run.run_id
        parts: list[Any] = []
        with ctx.progress.stage_of("explaining", len(texts)) as progress:
            for start in range(0, len(texts), CHUNK):
                chunk = texts[start : start + CHUNK]
                inner = progress.child(len(chunk))
                part = explain_texts(request, clf, chunk, inner)
                inner.close()
                if ctx.store is not None:
                    ctx.store.add_explanations(run.run_id, part, start=sum(map(len, parts)))
                parts.append(part)
                progress.advance(len(chunk))
        result.explanations = ExplanationSet([e for p in parts for e in p], run_id=run.run_id)
        run.summary = {"n_explanations": len(result.explanations)}
        if request.faithfulness:
            with ctx.progress.stage_of("scoring faithfulness"):
                result.faithfulness = faithfulness_rows(
                    result.explanations, clf, request.max_batch_tokens
                )
            run.summary["faithfulness"] = result.faithfulness
        if request.html:
            result.report = write_report(request, result)
            run.summary["report"] = result.report
    return result


def write_report(request: ExplainRequest, result: ExplainResult) -> str:
    from explainlm.report.heatmap import explanations_report
    from explainlm.report.html import write_path

    meta = {"model": request.model, "run": result.run_id or ""}
    return str(write_path(request.html or "", explanations_report(result.explanations, meta=meta)))
