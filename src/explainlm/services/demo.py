"""Demo: classify and explain example reviews and write an HTML report (``explainlm demo``).

The demo shows what to trust: ``auto``'s choice, every affordable method that passes the
faithfulness check on the demo model (its calibration, :mod:`explainlm.methods.calibration`), and
one method that fails it, labelled as such, so a newcomer sees why the check matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
MAX_PASSING = 2  # passing methods shown besides auto (auto races these)
DEMO_PARAMS = {"integrated_gradients": {"steps": 32}}


class DemoRequest(ModelOptions, ServiceRequest):
    """Every option of ``explainlm demo``."""

    command: ClassVar[str] = "demo"
    path_fields: ClassVar[tuple[str, ...]] = ("output",)
    output: str = Field("out/demo-report.html", description="Report file.")
    recalibrate: bool = Field(False, description="Recompute the model's calibration.")


@dataclass
class DemoResult:
    run_id: str | None
    model: str
    predictions: list[dict[str, Any]]
    explanations: Any
    report: str
    methods: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)
    calibration: dict[str, Any] | None = None

    def to_json_doc(self) -> dict[str, Any]:
        return json_safe(
            {
                "run_id": self.run_id,
                "model": self.model,
                "predictions": self.predictions,
                "methods": self.methods,
                "failing_shown": self.failing,
                "calibration": self.calibration,
                "explanations": [e.to_json_doc() for e in self.explanations],
                "report": self.report,
            }
        )


def demo_methods(cal: Any) -> tuple[list[str], list[str]]:
    """``auto``, the best passing methods of the calibration, and one failing method (integrated
    gradients when it fails, else the best-calibrated failing one)."""
    ranked = cal.ranked()
    passing = [r["method"] for r in ranked if r["passes"]][:MAX_PASSING]
    failing = [r["method"] for r in ranked if not r["passes"]]
    pick = ["integrated_gradients"] if "integrated_gradients" in failing else failing[:1]
    return ["auto", *passing, *pick], pick


def run(request: DemoRequest, ctx: ServiceContext) -> DemoResult:
    """Predict and explain :data:`EXAMPLES` with :func:`demo_methods`, one report for both."""
    from explainlm.report import predictions_section
    from explainlm.report.heatmap import explanations_section
    from explainlm.report.html import write_report
    from explainlm.report.trust import calibration_section
    from explainlm.services.calibration import ensure_calibration

    clf = ctx.task(request.model)
    with ctx.models.lock(request.model):
        cal = ensure_calibration(ctx, request.model, clf, refresh=request.recalibrate)
    methods, failing = demo_methods(cal)
    params = {m: p for m, p in DEMO_PARAMS.items() if m in methods}
    how = ExplainRequest(model=request.model, methods=methods, params=params)
    extra = {**clf.describe(), "methods": methods, "method_params": params, "failing": failing}
    with ctx.recorded_run(request, model=request.model, extra=extra) as run:
        preds = [p.to_dict() for p in clf.predict(EXAMPLES)]
        with ctx.progress.stage_of("explaining", len(EXAMPLES)) as progress:
            res = explain_texts(how, clf, EXAMPLES, progress.child(len(EXAMPLES)))
        res.run_id = run.run_id
        if ctx.store is not None:
            ctx.store.add_predictions(run.run_id, preds)
            ctx.store.add_explanations(run.run_id, res)
        meta = {"model": request.model, "run": run.run_id, "task": clf.task}
        meta["methods"] = ", ".join(methods)
        path = write_report(
            request.output,
            "explainlm demo: why did the model decide, and which explanation to trust?",
            [
                predictions_section(request.model, preds),
                calibration_section(cal.to_dict(), failing),
                explanations_section(res),
            ],
            meta,
        )
        run.summary = {"n": len(preds), "report": str(path), "failing_shown": failing}
    return DemoResult(
        run.run_id, request.model, preds, res, str(path), methods, failing, cal.to_dict()
    )
