"""``explainlm demo``: the main job on the embedded default model, with a report."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from explainlm.cli.common import DEFAULT_MODEL, ModelOpt, cli_context, console
from explainlm.cli.explain import (
    EXPLAIN_TERMS,
    RecalibrateOpt,
    print_explanations,
    print_glossary,
)
from explainlm.services.base import build_request


def print_calibration(cal: dict[str, Any], failing: list[str]) -> None:
    """Which methods pass the faithfulness check on this model (its calibration)."""
    console.print(Text(f"\nWhich methods to trust on {cal['model']}", style="bold"))
    console.print(
        Text(
            f"(calibration on {cal['n_texts']} built-in texts: comprehensiveness vs a random "
            "ranking, 95% bootstrap CI of the difference)",
            style="dim",
        )
    )
    for r in cal["methods"]:
        lo, hi = r["gain_ci"]
        verdict = "passes" if r["passes"] else "FAILS"
        note = (
            " — shown below so you can see why the check matters" if r["method"] in failing else ""
        )
        line = Text(f"  {r['method']:<22}")
        line.append(verdict, style="green" if r["passes"] else "red")
        line.append(
            f" · comprehensiveness {r['comprehensiveness']:.3f} vs random {r['random']:.3f} "
            f"(difference {r['gain']:+.3f} [{lo:+.3f}, {hi:+.3f}]){note}",
            style="dim",
        )
        console.print(line)


def demo(
    model: ModelOpt = DEFAULT_MODEL,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Report file.")
    ] = "out/demo-report.html",
    recalibrate: RecalibrateOpt = False,
) -> None:
    """Classify and explain example reviews with the built-in LLM (zero-shot) and write an HTML report.

    Shows auto's choice, the methods that pass the faithfulness check on the model, and one that
    fails it (labelled), so you can see why the check matters.

    Example: explainlm demo --output out/demo-report.html
    """
    from explainlm.services import demo as service

    req = build_request(service.DemoRequest, model=model, output=output, recalibrate=recalibrate)
    res = service.run(req, cli_context())
    if res.calibration:
        print_calibration(res.calibration, res.failing)
    print_explanations(res.explanations, top_k=3)
    print_glossary(EXPLAIN_TERMS)
    console.print(f"\nReport: {res.report}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)
