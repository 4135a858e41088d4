"""``explainlm runs``: list, show and export recorded runs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from explainlm.cli.common import console, emit_json
from explainlm.services import runs
from explainlm.services.base import ServiceContext, build_request
from explainlm.store import open_store


def context() -> ServiceContext:
    return ServiceContext(store=open_store(), source="cli")


runs_app = typer.Typer(
    help="Runs recorded in the store (list, show, export, doctor).", no_args_is_help=True
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
    req = build_request(runs.RunsListRequest, limit=limit, command=command, search=search)
    res = runs.list_runs(req, context())
    if as_json:
        emit_json(res.to_json_doc())
        return
    table = Table(title="runs")
    table.add_column("run_id", no_wrap=True)
    for col in ("created", "command", "model", "status"):
        table.add_column(col)
    for r in res.runs:
        cells = (r["run_id"], r["created_at"][:19], r["command"], r["model"] or "", r["status"])
        table.add_row(*(escape(v) for v in cells))
    console.print(table)


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix works).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a run's record and results.

    Example: explainlm runs show 20261123-101500-a1b2c3
    """
    res = runs.show_run(build_request(runs.RunShowRequest, run_id=run_id), context())
    rec, tables = res.record, res.doc
    if as_json:
        emit_json(res.to_json_doc())
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
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="json | parquet | csv | html")
    ] = "json",
    output: Annotated[str | None, typer.Option("--output", "-o", help="File to write.")] = None,
) -> None:
    """Export a run's results.

    Examples:

        explainlm runs export 20261123-101500-a1b2c3 --format parquet -o run.parquet

        explainlm runs export 20261123-101500-a1b2c3 --format html -o report.html
    """
    req = build_request(runs.RunExportRequest, run_id=run_id, format=fmt, output=output)
    for p in runs.export_run(req, context()).files:
        console.print(p, markup=False, soft_wrap=True)  # paths stay whole, verbatim


@runs_app.command("doctor")
def doctor_cmd(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Damaged store files to salvage (default: those moved aside)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the run store: move a damaged one aside, mark runs whose process died as
    interrupted, and copy every readable run of damaged copies back.

    Example: explainlm runs doctor
    """
    report = runs.doctor(build_request(runs.RunsDoctorRequest, files=files or []), context())
    if as_json:
        emit_json(report.to_json_doc())
        return
    console.print(
        f"store {report.store}: schema {report.schema_version}, {report.runs} runs", markup=False
    )
    if report.marked_interrupted:
        console.print(
            f"marked interrupted (their process is gone): {', '.join(report.marked_interrupted)}",
            markup=False,
        )
    for s in report.salvaged:
        copied = ", ".join(f"{n} {t}" for t, n in s.rows.items()) or "nothing"
        console.print(f"salvaged from {s.path}: {copied}", markup=False, soft_wrap=True)
        for table, why in s.lost.items():
            console.print(f"  lost {table}: {why}", markup=False, soft_wrap=True)
    if not report.salvaged:
        console.print("no damaged copies to salvage", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
