"""Helpers shared by the CLI commands: options, output, the service context, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from explainlm.progress import TerminalProgress
from explainlm.services import common as services_common
from explainlm.services.base import LocalModels, ServiceContext, build_request
from explainlm.services.common import DEFAULT_MODEL, unescape
from explainlm.store import open_store

__all__ = [
    "DEFAULT_MODEL",
    "BootOpt",
    "BudgetOpt",
    "DeviceOpt",
    "EncodingOpt",
    "GranularityOpt",
    "HtmlOpt",
    "InputOpt",
    "JsonOpt",
    "LabelsOpt",
    "LimitOpt",
    "MethodOpt",
    "ModelOpt",
    "NoTruncateOpt",
    "ParamOpt",
    "TemplateOpt",
    "TextColumnOpt",
    "TextsArg",
    "cli_context",
    "console",
    "emit_json",
    "err_console",
    "gather_texts",
    "load_task",
    "report_written",
    "split_list",
    "status",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


# Options shared by the commands (one declaration, one help text)
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Built-in name, model directory or hub id.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, …")]
TextsArg = Annotated[list[str] | None, typer.Argument(help="Texts (or use --input).")]
InputOpt = Annotated[
    str | None, typer.Option("--input", "-i", help="TSV/CSV/JSONL/TXT file of texts.")
]
TextColumnOpt = Annotated[str, typer.Option(help="Text column of --input.")]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N texts.")]
LabelsOpt = Annotated[
    str | None, typer.Option(help="Zero-shot labels, comma-separated, e.g. negative,positive.")
]
TemplateOpt = Annotated[str | None, typer.Option(help="Zero-shot prompt template with {text}.")]
MethodOpt = Annotated[list[str] | None, typer.Option("--method", help="Method name (repeatable).")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="Method parameter METHOD.NAME=VALUE (repeatable)."),
]
BudgetOpt = Annotated[int, typer.Option(help="Token budget per pass (rows × padded length).")]
BootOpt = Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the CIs.")]
MeasuredBudgetOpt = Annotated[
    int | None,
    typer.Option(
        "--max-batch-tokens",
        help="Token budget per pass (rows × padded length); default: measured for this machine "
        "under --precision auto, else 2048.",
    ),
]
GranularityOpt = Annotated[
    str, typer.Option(help="word | sentence (long texts: far fewer passes) | token")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="auto | fp32 | bf16 | int8: auto uses bf16/int8 and the pass size a one-time "
        "measurement on this machine finds fastest (docs/performance.md)."
    ),
]
NoTruncateOpt = Annotated[
    bool,
    typer.Option(
        "--no-truncate", help="Error on texts over the model's limit instead of truncating."
    ),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option("--encoding", help="Text encoding of --input (default UTF-8), e.g. latin-1."),
]
HtmlOpt = Annotated[
    str | None, typer.Option("--html", help="Write a self-contained HTML report here.")
]


def emit_json(doc: Any) -> None:
    """Print one machine-readable JSON document on stdout."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on stderr while something slow (like loading a model) runs."""
    with err_console.status(message, spinner="dots"):
        yield


def split_list(value: str | None) -> list[str] | None:
    """``"a,b"`` → ``["a", "b"]`` (None stays None)."""
    return services_common.split_list(value)


def gather_texts(
    texts: Sequence[str] | None,
    input_file: str | None,
    text_column: str,
    limit: int | None = None,
) -> list[str]:
    """Texts from the command line and/or an input file (TSV/CSV/JSONL/TXT)."""
    return services_common.gather_texts(texts, input_file, text_column, limit)


def load_task(
    model: str,
    task: str | None = None,
    *,
    labels: str | None = None,
    template: str | None = None,
    calibrate: bool | None = None,
    chat: bool | None = None,
    device: str | None = None,
) -> Any:
    """Load a model as a task with a spinner; options come straight from the CLI."""
    opts = build_request(
        services_common.TaskOptions,  # type: ignore[type-var]
        model=model,
        task=task,
        labels=labels,
        template=unescape(template),
        calibrate=calibrate,
        chat=chat,
        device=device,
    )
    return LocalModels(device, announce=status).task(model, task, **opts.task_options())


def cli_context(device: str | None = None) -> ServiceContext:
    """What every command runs its service with: the run store, a terminal progress bar, models
    loaded in this process (with a spinner), recorded as ``source="cli"``."""
    return ServiceContext(
        store=open_store(),
        progress=TerminalProgress(),
        models=LocalModels(device, announce=status),
        source="cli",
    )


def report_written(path: str | None) -> None:
    """Say where an HTML report went (stderr, so ``--json`` output stays one document)."""
    if path:
        err_console.print(f"report written to {path}", soft_wrap=True, markup=False)
