"""``explainlm runs``: list, show and export recorded runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from explainlm.cli.common import console, emit_json
from explainlm.store import open_store

runs_app = typer.Typer(
    help="Runs recorded in the store (list, show, export).", no_args_is_help=True
)


@runs_app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 20,
    command: Annotated[str | None, typer.Option(help="Only runs of this command.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Substring of the id, model or parameters.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List runs, newest first.

    Example: explainlm runs list --command predict --limit 5
    """
    runs = open_store().list_runs(limit=limit, command=command, search=search)
    if as_json:
        emit_json({"runs": [r.to_dict() for r in runs]})
        return
    table = Table(title="runs")
    table.add_column("run_id", no_wrap=True)
    for col in ("created", "command", "model", "status"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            *(escape(v) for v in (r.run_id, r.created_at[:19], r.command, r.model or "", r.status))
        )
    console.print(table)


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix works).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a run's record and results.

    Example: explainlm runs show 20261123-101500-a1b2c3
    """
    store = open_store()
    rec = store.get_run(run_id)
    tables = store.result_tables(rec.run_id)
    if as_json:
        emit_json({"run": rec.to_dict(), **tables})
        return
    console.print(
        f"[bold]{escape(rec.run_id)}[/bold]  "
        + escape(f"{rec.command}  model={rec.model}  status={rec.status}")
    )
    console.print(f"created {rec.created_at}  finished {rec.finished_at}")
    console.print("params: " + escape(json.dumps(rec.params, default=str)))
    if rec.summary:
        console.print("summary: " + escape(json.dumps(rec.summary, default=str)))
    if rec.error:
        console.print(f"[red]error: {escape(rec.error)}[/red]")
    for name, rows in tables.items():
        console.print(f"{name}: {len(rows)} rows")
        for row in rows[:20]:
            console.print(
                "  "
                + escape(json.dumps({k: v for k, v in row.items() if k != "run_id"}, default=str))
            )


@runs_app.command("export")
def export_run(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix works).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="parquet | json | csv")] = "json",
    output: Annotated[str | None, typer.Option("--output", "-o", help="File to write.")] = None,
) -> None:
    """Export a run's results.

    Example: explainlm runs export 20261123-101500-a1b2c3 --format parquet -o run.parquet
    """
    store = open_store()
    rec = store.get_run(run_id)
    written = store.export(rec.run_id, fmt, output or f"{rec.run_id}.{fmt}")
    for p in written:
        console.print(str(p), markup=False, soft_wrap=True)  # paths stay whole, verbatim


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
