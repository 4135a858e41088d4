"""Predict: labels and probabilities for texts (``explainlm predict``, ``POST /api/predict``).

>>> req = PredictRequest(texts=["A fine film."], model="smollm2-135m")
>>> req.command, req.max_new_tokens
('predict', 20)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from explainlm.services.base import ServiceContext, ServiceRequest, json_safe
from explainlm.services.common import PrecisionOptions, TaskOptions, TextsInput
from explainlm.services.precision_plan import pin_precision, resolve_plan

CHUNK = 32  # texts per stored chunk (progress and cancellation points)


class PredictRequest(TaskOptions, TextsInput, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm predict``."""

    command: ClassVar[str] = "predict"
    path_fields: ClassVar[tuple[str, ...]] = ("input",)

    max_new_tokens: int = Field(
        20, ge=1, le=4096, description="Generator task: tokens to generate."
    )
    truncate: bool = Field(True, description="False: error on texts over the model's limit.")


@dataclass
class PredictResult:
    run_id: str | None
    model: str
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(Counter(p["label"] for p in self.predictions))

    def to_json_doc(self) -> dict[str, Any]:
        """``{"run_id", "model", "predictions": [{"text", "label", "probs", "warnings"?}]}``."""
        return json_safe(
            {"run_id": self.run_id, "model": self.model, "predictions": self.predictions}
        )


def prepare(request: PredictRequest, clf: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The precision plan (the run's pinned one; a generator's measured as generation measures
    it), the model variant it runs on and the ``predict`` keywords."""
    from explainlm.models.precision import model_kind, variant_task

    plan = resolve_plan(request, clf)
    runner = variant_task(clf, model_kind(plan, "forward"))
    kw: dict[str, Any] = {"truncation": request.truncate}
    budget = request.max_batch_tokens or plan.forward_batch_tokens
    if clf.task != "generator" and budget:
        kw["max_batch_tokens"] = budget
    if clf.task == "generator":
        kw["max_new_tokens"] = request.max_new_tokens
    return plan, runner, kw


def predict_texts(
    request: PredictRequest,
    clf: Any,
    texts: Sequence[str],
    prepared: tuple[Any, Any, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The predictions of ``texts`` (the unit a chunk or a Ray shard runs)."""
    import torch

    from explainlm.models.precision import close_calls, pass_context, settles_close_calls

    plan, runner, kw = prepared or prepare(request, clf)
    with torch.no_grad(), pass_context(plan, "forward", clf.wrapper.device):  # autocast plans
        preds = runner.predict(list(texts), **kw)
    if clf.task != "generator" and settles_close_calls(plan):  # labels fp32 would decide
        rows = close_calls(torch.tensor([p.scores for p in preds]))
        with torch.no_grad():
            again = clf.predict([texts[i] for i in rows], **kw) if rows else []
        for i, p in zip(rows, again, strict=True):
            preds[i] = p
    return [p.to_dict() for p in preds]


def run(request: PredictRequest, ctx: ServiceContext) -> PredictResult:
    """Predict every text, storing each chunk as it is done."""
    texts = request.read_texts()
    clf = ctx.task(request.model, request.task, **request.task_options())
    result = PredictResult(None, request.model)
    extra = {"n_texts": len(texts), **clf.describe(), "truncate": request.truncate}
    with (
        ctx.recorded_run(request, model=request.model, extra=extra) as run,
        ctx.model_lock(request.model),
        ctx.progress.stage_of("predicting", len(texts)) as progress,
    ):
        result.run_id = run.run_id
        request = pin_precision(request, clf, ctx, run)  # under the lock: auto may measure once
        prepared = prepare(request, clf)
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start : start + CHUNK]
            out = predict_texts(request, clf, chunk, prepared)
            if ctx.store is not None:
                ctx.store.add_predictions(run.run_id, out, start=start)
            result.predictions += out
            progress.advance(len(chunk))
        run.summary = {"n": len(result.predictions), "label_counts": result.label_counts,
                       "precision": prepared[0].mode("forward")}  # fmt: skip
    return result
