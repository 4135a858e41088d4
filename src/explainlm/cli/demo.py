"""``explainlm demo``: the main job on the embedded default model, with a report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from explainlm.cli.common import DEFAULT_MODEL, console, err_console, load_task
from explainlm.report import predictions_section, write_report
from explainlm.store import open_store

EXAMPLES = [
    "This movie was wonderful, touching and funny.",
    "A dull, lifeless and badly acted waste of two hours.",
    "The plot is thin, but the performances are superb.",
    "I would not recommend this film to anyone.",
    "An instant classic with a brilliant script.",
    "The jokes fall flat and the ending is a mess.",
]


def demo(
    model: Annotated[str, typer.Option("--model", "-m")] = DEFAULT_MODEL,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Report file.")
    ] = "out/demo-report.html",
) -> None:
    """Classify example sentences with the built-in LLM (zero-shot) and write an HTML report.

    Example: explainlm demo --output out/demo-report.html
    """
    clf = load_task(model)
    store = open_store()
    with store.recorded_run("demo", model=model, params=clf.describe()) as run:
        preds = [p.to_dict() for p in clf.predict(EXAMPLES)]
        store.add_predictions(run.run_id, preds)
        path = write_report(
            output,
            "explainlm demo",
            [predictions_section(model, preds)],
            {"model": model, "run": run.run_id, "task": clf.task},
        )
        run.summary = {"n": len(preds), "report": str(path)}
    table = Table(title=f"{model} (zero-shot sentiment) · run {run.run_id}")
    table.add_column("text")
    table.add_column("label", style="bold")
    table.add_column("p", justify="right")
    for p in preds:
        table.add_row(p["text"], p["label"], f"{p['probs'][p['label']]:.3f}")
    console.print(table)
    err_console.print(f"report written to {path}")
    console.print(f"Report: {path}")


def register(app: typer.Typer) -> None:
    app.command()(demo)
