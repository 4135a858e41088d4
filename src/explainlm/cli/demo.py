"""``explainlm demo``: the main job on the embedded default model, with a report."""

from __future__ import annotations

from typing import Annotated

import typer

from explainlm.cli.common import DEFAULT_MODEL, ModelOpt, cli_context, console
from explainlm.cli.explain import print_explanations
from explainlm.services.base import build_request


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
    from explainlm.services import demo as service

    res = service.run(build_request(service.DemoRequest, model=model, output=output), cli_context())
    print_explanations(res.explanations, top_k=3)
    console.print(f"\nReport: {res.report}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)
