"""Explain: attributions of classifier predictions (``explainlm explain``, ``POST /api/explain``).

All methods run in one :func:`explainlm.attribution.explain` call per chunk of texts, so each text
is encoded and predicted once however many methods explain it. Each chunk (``chunk_size`` texts) is
stored as soon as it is done, so an interrupted run resumes (``resume=RUN_ID``: the run's own
stored settings and input) without recomputing stored texts.

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
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import ServiceContext, ServiceRequest, json_safe
from explainlm.services.common import (
    CsvList,
    MethodParams,
    PrecisionOptions,
    TaskOptions,
    TextsInput,
    check_methods,
    check_output_file,
    check_target_options,
)
from explainlm.services.precision_plan import pin_precision

DEFAULT_METHODS = ["auto"]
CHUNK = 64  # texts per explain() call and stored chunk
FAITHFULNESS_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)  # ERASER's top-k% bins


class ExplainRequest(TaskOptions, TextsInput, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm explain``."""

    command: ClassVar[str] = "explain"
    path_fields: ClassVar[tuple[str, ...]] = ("input", "html")

    methods: CsvList = Field(default_factory=lambda: list(DEFAULT_METHODS))
    target: str | None = Field(
        None, description="LABEL, or prob|logit|log_odds[:LABEL] (default: the predicted label)."
    )
    contrast: str | None = Field(None, description="LABEL:FOIL — explain the logit difference.")
    granularity: Literal["word", "sentence", "token"] = Field(
        "word", description="word | sentence (long texts: far fewer passes) | token"
    )
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
    check: bool = Field(
        True, description="The faithfulness check on every explanation (false: off; auto keeps it)."
    )
    forbid: CsvList = Field(default_factory=list, description="Methods auto must never use.")
    recalibrate: bool = Field(False, description="Recompute auto's per-model calibration.")
    chunk_size: int = Field(CHUNK, ge=1, description="Texts per stored chunk.")
    resume: str | None = Field(None, description="Resume an interrupted explain run by its id.")

    @model_validator(mode="after")
    def _check(self) -> ExplainRequest:
        check_methods(self.methods, self.params)
        check_forbidden(self.methods, self.forbid)
        check_target_options(self.target, self.contrast)
        check_output_file(self.html, "--html")
        return self

    def method_params(self) -> dict[str, dict[str, Any]]:
        """``params``, with the ``forbid`` list handed to ``auto``."""
        return auto_params(self.methods, self.params, self.forbid)


def check_forbidden(methods: Sequence[str], forbid: Sequence[str]) -> None:
    """Forbidden methods are known names and not also requested."""
    from explainlm.methods import METHODS

    for m in forbid:
        METHODS[m]  # a UserError listing the known names
    both = sorted(set(methods) & set(forbid))
    if both:
        raise UserError(f"{', '.join(both)} is both requested and forbidden")


def auto_params(
    methods: Sequence[str], params: dict[str, dict[str, Any]], forbid: Sequence[str]
) -> dict[str, dict[str, Any]]:
    if "auto" not in methods or not forbid:
        return dict(params)
    auto = dict(params.get("auto", {}))
    auto["forbid"] = ",".join([*filter(None, str(auto.get("forbid", "")).split(",")), *forbid])
    return {**params, "auto": auto}


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
        agree = agreement_docs(self.explanations)
        if agree:  # texts explained by several methods: their rank agreement
            doc["agreement"] = agree
        if self.faithfulness is not None:
            doc["faithfulness"] = self.faithfulness
        return json_safe(doc)


def agreement_docs(explanations: Sequence[Any]) -> list[dict[str, Any]]:
    """Per text explained by several methods: their pairwise rank agreement and a sentence."""
    from explainlm.report.heatmap import method_name
    from explainlm.report.trust import agreement, agreement_sentence

    groups: dict[str, list[Any]] = {}
    for e in explanations:
        groups.setdefault(e.text, []).append(e)
    out = []
    for text, group in groups.items():
        pairs = agreement({method_name(e): e.feature_scores() for e in group})
        if pairs:
            out.append({"text": text, "pairs": pairs, "sentence": agreement_sentence(pairs)})
    return out


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
        method_params=request.method_params(),
        max_batch_tokens=request.max_batch_tokens,
        truncation=request.truncate,
        progress=progress,
        mixed_precision=request.mixed_precision,
        precision=request.pinned_precision(),
        check=request.check,
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


def resolved(request: ExplainRequest, ctx: ServiceContext) -> ExplainRequest:
    """With ``resume``: the resumed run's own stored request (``device`` and ``html`` may be
    given anew); checked before any model loads."""
    if not request.resume:
        return request
    if ctx.store is None:
        raise UserError("resuming needs the run store (drop --no-store)")
    rec = ctx.store.get_run(request.resume)
    if rec.command != "explain":
        raise UserError(
            f"run {rec.run_id} is a {rec.command} run, not an explain run; "
            f"resume it with `explainlm {rec.command} --resume {rec.run_id}`"
        )
    return ExplainRequest.from_stored(
        rec.params, resume=rec.run_id, device=request.device, html=request.html
    )


def stored_parts(ctx: ServiceContext, run: Any, texts: Sequence[str], n_methods: int) -> list[Any]:
    """The explanations a resumed run already stored (whole texts only), checked against the
    input: a changed input file cannot be resumed."""
    if ctx.store is None or not run.resumed:
        return []
    stored = list(ctx.store.load_explanations(run.run_id))
    done = len(stored) // n_methods
    ctx.store.drop_explanations_from(run.run_id, done * n_methods)
    stored = stored[: done * n_methods]
    for i, e in enumerate(stored[::n_methods]):
        if i >= len(texts) or e.text != texts[i]:
            raise UserError(
                f"cannot resume {run.run_id}: its input changed (text {i + 1} differs from the "
                "stored one); start a new run"
            )
    return [stored] if stored else []


def run(request: ExplainRequest, ctx: ServiceContext) -> ExplainResult:
    """Explain every text with every method, storing each chunk; optional faithfulness and HTML."""
    from explainlm.explanation import ExplanationSet
    from explainlm.models import Classifier

    request = resolved(request, ctx)
    texts = request.read_texts()
    clf = ctx.task(request.model, request.task, **request.task_options())
    if not isinstance(clf, Classifier):
        raise UserError(
            f"{request.model} as {clf.task} is not a classifier: use generate to explain generation"
        )
    result = ExplainResult(None, request.model, ExplanationSet([]), None, request.summary)
    extra = {"n_texts": len(texts), **clf.describe(), "precision": request.precision}
    with (
        ctx.recorded_run(request, model=request.model, extra=extra, resume=request.resume) as run,
        ctx.model_lock(request.model),
    ):
        result.run_id = run.run_id
        request = pin_precision(request, clf, ctx, run)  # a resume: the plan it started with
        if "auto" in request.methods:
            from explainlm.services.calibration import ensure_calibration

            ensure_calibration(
                ctx, request.model, clf, refresh=request.recalibrate,
                max_batch_tokens=request.max_batch_tokens,
            )  # fmt: skip
        parts = stored_parts(ctx, run, texts, len(request.methods))
        first = sum(map(len, parts)) // len(request.methods)
        with ctx.progress.stage_of("explaining", len(texts)) as progress:
            if first:
                progress.advance(first, "resumed")
            for start in range(first, len(texts), request.chunk_size):
                chunk = texts[start : start + request.chunk_size]
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
                    result.explanations, clf, request.max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS
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
