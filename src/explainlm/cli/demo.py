"""``explainlm demo``: the main job on the embedded default model, with a report."""

from __future__ import annotations

from typing import Annotated

import typer

from explainlm.cli.common import DEFAULT_MODEL, ModelOpt, console, load_task
from explainlm.store import open_store

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


def demo(
    model: ModelOpt = DEFAULT_MODEL,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Report file.")
    ] = "out/demo-report.html",
) -> None:
    """Classify and explain example reviews with the built-in LLM (zero-shot) and write an HTML report.

    Three methods (occlusion, integrated gradients, input × gradient) explain each prediction.

    Example: explainlm demo --output out/demo-report.html
    """
    from explainlm.attribution import explain
    from explainlm.cli.explain import print_explanations
    from explainlm.report import predictions_section
    from explainlm.report.heatmap import explanations_section
    from explainlm.report.html import write_report

    clf = load_task(model)
    store = open_store()
    params = {**clf.describe(), "methods": DEMO_METHODS, "method_params": DEMO_PARAMS}
    with store.recorded_run("demo", model=model, params=params) as run:
        preds = [p.to_dict() for p in clf.predict(EXAMPLES)]
        store.add_predictions(run.run_id, preds)
        res = explain(EXAMPLES, clf, DEMO_METHODS, method_params=DEMO_PARAMS, progress=True)
        res.run_id = run.run_id
        store.add_explanations(run.run_id, res)
        path = write_report(
            output,
            "explainlm demo: why did the model decide?",
            [predictions_section(model, preds), explanations_section(res)],
            {
                "model": model,
                "run": run.run_id,
                "task": clf.task,
                "methods": ", ".join(DEMO_METHODS),
            },
        )
        run.summary = {"n": len(preds), "report": str(path)}
    print_explanations(res, top_k=3)
    console.print(f"\nReport: {path}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)
