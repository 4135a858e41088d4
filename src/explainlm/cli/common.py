"""Helpers shared by the CLI commands: output, input gathering, model loading, progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from explainlm.errors import UserError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DEFAULT_MODEL = "smollm2-135m"

# Options shared by the commands (one declaration, one help text)
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Built-in name, model directory or hub id.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, …")]


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
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UserError(f"expected a comma-separated list, got {value!r}")
    return items


def gather_texts(
    texts: Sequence[str] | None,
    input_file: str | None,
    text_column: str,
    limit: int | None = None,
) -> list[str]:
    """Texts from the command line and/or an input file (TSV/CSV/JSONL/TXT)."""
    from explainlm.datasets import read_table

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    out = list(texts or [])
    if input_file:
        out += read_table(input_file, text_column=text_column, limit=limit).texts
    if not out:
        raise UserError("no text given: pass TEXT arguments or --input FILE")
    for i, t in enumerate(out):
        if not t.strip():
            raise UserError(f"text {i + 1} is empty: nothing to predict or explain")
    return out[:limit] if limit is not None else out


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
    from explainlm.models import load_model

    kw: dict[str, Any] = {}
    if labels is not None:
        kw["labels"] = split_list(labels)
        if duplicated := sorted({x for x in kw["labels"] if kw["labels"].count(x) > 1}):
            raise UserError(f"duplicate label(s) in --labels: {', '.join(duplicated)}")
    if template:
        kw["template"] = template.replace("\\n", "\n")
    if calibrate is not None:
        kw["calibrate"] = calibrate
    if chat is not None:
        kw["chat"] = chat
    with status(f"loading {model} …"):
        return load_model(model, task, device=device, **kw)
