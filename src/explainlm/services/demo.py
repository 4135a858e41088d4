"""Demo: classify and explain example reviews and write an HTML report (``explainlm demo``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from explainlm.results import json_safe
from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.services.common import ModelOptions
from explainlm.services.explain import ExplainRequest, explain_texts

EXAMPLES = [
    "This movie was wonderful, touching and funny.",
    "A dull, lifeless and badly acted waste of two hours.",
    "The plot is thin, but the performances are superb.",
    "I would not recommend this film to anyone.",
    "An instant classic with a brilliant script.",
    "The jokes fall flat and the ending is a mess.",
]
DEMO_METHODS = ["occlusion", "integrated_gradients", "grad_x_input"]
DEMO_PARAMS = {"integrated_gradients": {"steps": 32}}


class DemoRequest(ModelOptions, ServiceRequest):
    """Every option of ``explainlm demo``."""

    command: ClassVar[str] = "demo"
    path_fields: ClassVar[tuple[str, ...]] = ("output",)
    output: str = Field("out/demo-report.html", description="Report file.")


@dataclass
class DemoResult:
    run_id: str | None
    model: str
    predictions: list[dict[str, Any]]
    explanations: Any
    report: str

    def to_json_doc(self) -> dict[str, Any]:
        return json_safe(
            {
                "run_id": self.run_id,
                "model": self.model,
                "predictions": self.predictions,
                "explanations": [e.to_json_doc() for e in self.explanations],
                "report": self.report,
            }
        )


def run(request: DemoRequest, ctx: ServiceContext) -> DemoResult:
    """Predict and explain :data:`EXAMPLES` with :data:`DEMO_METHODS`, one report for both."""
    from explainlm.report import predictions_section
    from explainlm.report.heatmap import explanations_section
    from explainlm.report.html import write_report

    clf = ctx.task(request.model)
    how = ExplainRequest(model=request.model, methods=DEMO_METHODS, params=DEMO_PARAMS)
    extra = {**clf.describe(), "methods": DEMO_METHODS, "method_params": DEMO_PARAMS}
    with ctx.recorded_run(request, model=request.model, extra=extra) as run:
        preds = [p.to_dict() for p in clf.predict(EXAMPLES)]
        with ctx.progress.stage_of("explaining", len(EXAMPLES)) as progress:
            res = explain_texts(how, clf, EXAMPLES, progress.child(len(EXAMPLES)))
        res.run_id = run.run_id
        if ctx.store is not None:
            ctx.store.add_predictions(run.run_id, preds)
            ctx.store.add_explanations(run.run_id, res)
        meta = {"model": request.model, "run": run.run_id, "task": clf.task}
        meta["methods"] = ", ".join(DEMO_METHODS)
        path = write_report(
            request.output,
            "explainlm demo: why did the model decide?",
            [predictions_section(request.model, preds), explanations_section(res)],
            meta,
        )
        run.summary = {"n": len(preds), "report": str(path)}
    return DemoResult(run.run_id, request.model, preds, res, str(path))
