"""``explainlm models``: the built-in models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from explainlm.cli.common import console, emit_json

models_app = typer.Typer(help="Built-in models.", no_args_is_help=True)


@models_app.command("list")
def list_models_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List built-in model names (any local model directory or hub id works too).

    Example: explainlm models list
    """
    from explainlm.models import list_models

    models = list_models()
    if as_json:
        emit_json({"models": models})
        return
    table = Table(title="built-in models")
    for col in ("name", "kind", "description"):
        table.add_column(col)
    for m in models:
        table.add_row(m["name"], m["kind"], m["description"])
    console.print(table)
    console.print(
        "Also: any local Hugging Face model directory, or a hub id (when a hub is reachable)."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
