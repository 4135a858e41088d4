"""``--backend local|ray`` and its options, shared by the dataset commands (predict, explain,
generate, benchmark, the audits): options → :class:`~explainlm.services.dataset_jobs.BackendOptions`
→ the service or the cluster backend → the command's own rendering (local), or the job's summary
(cluster)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from explainlm.cli.common import console, emit_json, report_written
from explainlm.services.base import ServiceContext, ServiceRequest, build_request
from explainlm.services.dataset_jobs import BackendOptions
from explainlm.services.dataset_jobs import run as run_job

BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        # escaped: typer reads help as rich markup, which would swallow "[ray]"
        help=escape(
            "local (this process) or ray (an actor pool on a Ray cluster; "
            "pip install 'explainlm[ray]')."
        ),
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster: auto (the running one), ray://HOST:PORT; default: start one here."
    ),
]
ActorsOpt = Annotated[int | None, typer.Option(help="Ray actors, one model copy each (default 2).")]
GpusOpt = Annotated[
    float | None, typer.Option("--gpus-per-actor", help="GPUs per Ray actor (0.5: two share one).")
]
CpusOpt = Annotated[float, typer.Option("--cpus-per-actor", help="CPUs per Ray actor.")]
ResultsDirOpt = Annotated[
    str | None,
    typer.Option(
        "--results-dir", help="Folder of the Ray job's Parquet result dataset (one file per shard)."
    ),
]
ResumeJobOpt = Annotated[
    str | None, typer.Option("--resume", help="Resume an unfinished Ray job by its run id.")
]


def backend_options(
    backend: str,
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1.0,
    results_dir: str | None = None,
    resume: str | None = None,
) -> BackendOptions:
    """The options as given (unset ones stay unset: a resumed job keeps its stored ones)."""
    given = {
        "address": address,
        "actors": actors,
        "gpus_per_actor": gpus_per_actor,
        "output": results_dir,
        "resume": resume,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    if cpus_per_actor != 1.0:
        fields["cpus_per_actor"] = cpus_per_actor
    return build_request(BackendOptions, backend=backend, **fields)  # type: ignore[arg-type]


def run_command(
    request: ServiceRequest,
    ctx: ServiceContext,
    options: BackendOptions,
    *,
    as_json: bool,
    render: Callable[[Any], None],
    show_merged: bool = False,
) -> None:
    """Run locally and ``render`` the result, or on the cluster and show the job's summary
    (``--json``: the merged result's document, as a local run prints it, plus ``dataset``;
    ``show_merged``: also ``render`` the merged result, for jobs whose result is a summary)."""
    res = run_job(request, ctx, options)
    if options.backend == "local":
        render(res)
        return
    if as_json:
        doc = res.load().to_json_doc()
        doc["run_id"] = res.run_id
        doc["dataset"] = res.summary()
        emit_json(doc)
        return
    print_job_summary(res)
    if show_merged:
        render(res.load())
    elif getattr(request, "html", None):  # the HTML report of the merged result
        report_written(getattr(res.load(), "report", None))


def print_job_summary(res: Any) -> None:
    s = res.summary()
    console.print(
        f"[bold]{res.command}[/bold] run {escape(str(res.run_id))}: {s['rows']} rows in "
        f"{s['shards']} shards ({s['computed_shards']} computed now, {s['resumed_shards']} "
        f"resumed) on {len(s['actors'])} actors, {s['seconds']:.1f} s"
    )
    for f in s["failed_rows"][:5]:
        console.print(f"[yellow]row {f['row']} failed: {escape(f['error'])}[/yellow]")
    if s["n_failed_rows"] > 5:
        console.print(f"[yellow]… {s['n_failed_rows'] - 5} more failed rows[/yellow]")
    console.print(f"results (Parquet, one file per shard): {escape(s['output'])}", soft_wrap=True)
