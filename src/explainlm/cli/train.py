"""``explainlm train``: fine-tune an encoder into a sequence classifier (see :mod:`explainlm.training`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from explainlm.errors import UserError

TRAIN_FILE = typer.Argument(
    ...,
    help="Labelled training file (.tsv, .csv or .jsonl), or a dataset NAME:SPLIT (e.g. eraser-movies:train).",
)
DEV_FILE = typer.Option(
    None,
    "--dev",
    help="Dev file: evaluated every epoch, used for early stopping and choosing the best epoch.",
)
LABEL_NAMES = typer.Option(
    None,
    "--label-names",
    help="Comma-separated names for the sorted label values, e.g. negative,positive.",
)
AUGMENT = typer.Option(
    None,
    "--augment",
    help="Counterfactual data augmentation: swap:gender, swap:race or swap:PAIRS.csv "
    "(adds a copy of every text with identity terms swapped, same label).",
)


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise UserError(f"--label-names {text!r}: give comma-separated, non-empty names")
    return names


def train_command(
    train_file: Path = TRAIN_FILE,
    dev: Path | None = DEV_FILE,
    test: Path | None = typer.Option(
        None, "--test", help="Test file: the best model is evaluated on it after training."
    ),
    text_column: str = typer.Option("text", "--text-column", help="Column holding the text."),
    label_column: str = typer.Option("label", "--label-column", help="Column holding the label."),
    label_names: str | None = LABEL_NAMES,
    base_model: str = typer.Option(
        "minilm-l6", "--base-model", help="Built-in encoder name or a local Hugging Face directory."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to save the model in."),
    epochs: int = typer.Option(3, "--epochs", help="Most epochs to train."),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size."),
    lr: float = typer.Option(5e-5, "--lr", help="Peak learning rate (AdamW, linear warmup/decay)."),
    max_length: int = typer.Option(128, "--max-length", help="Truncate texts to this many tokens."),
    seed: int = typer.Option(0, "--seed", help="Random seed (weights init and data order)."),
    patience: int = typer.Option(
        1, "--patience", help="Stop after this many epochs without a better dev accuracy."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N training rows."),
    dev_limit: int | None = typer.Option(
        None, "--dev-limit", help="Use only the first N dev rows."
    ),
    augment: str | None = AUGMENT,
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, … (default: cuda when present)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (no progress bars)."
    ),
) -> None:
    """Fine-tune an encoder (default: MiniLM) into a sequence classifier and save it.

    The saved directory works with every other command as --model.

    Example (SST-2 sentiment; add --test FILE to report test accuracy of the best epoch):

        explainlm train ../shared/data/sst2/train.tsv --dev ../shared/data/sst2/dev.tsv --text-column sentence --label-names negative,positive --output models/minilm-sst2

    Built-in datasets by name and split (ERASER texts live in a docs/ folder; biosbias:train|test):

        explainlm train eraser-movies:train --dev eraser-movies:val --test eraser-movies:test --max-length 512 --output models/minilm-movies

    Counterfactual data augmentation against gender bias (Bias in Bios):

        explainlm train biosbias:train --test biosbias:test --augment swap:gender --output models/minilm-biosbias-cda
    """
    from explainlm.services import train as service
    from explainlm.services.base import build_request

    req = build_request(
        service.TrainRequest,
        train_file=str(train_file),
        dev_file=str(dev) if dev else None,
        test_file=str(test) if test else None,
        text_column=text_column,
        label_column=label_column,
        label_names=_split_names(label_names),
        base_model=base_model,
        output=str(output),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        max_length=max_length,
        seed=seed,
        patience=patience,
        limit=limit,
        dev_limit=dev_limit,
        augment=augment,
        device=device,
    )

    _run_and_show(req, device, as_json)


def _run_and_show(req: Any, device: str | None, as_json: bool) -> None:
    from explainlm.progress import Progress, TerminalProgress
    from explainlm.services import train as service
    from explainlm.services.base import LocalModels, ServiceContext
    from explainlm.store import open_store

    def log(message: str) -> None:
        typer.echo(message, err=as_json)

    ctx = ServiceContext(
        store=open_store(),
        progress=Progress() if as_json else TerminalProgress(),
        models=LocalModels(device=device),
        source="cli",
    )
    result = service.run(req, ctx, log=log)
    if as_json:
        typer.echo(json.dumps(result.to_json_doc(), indent=2))
    else:
        s = result.summary
        acc = f"; test accuracy {s['test']['accuracy']:.4f}" if s.get("test") else ""
        typer.echo(
            f"run {result.run_id}: saved {s['output_dir']} (best epoch {s['best_epoch']}){acc}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_command)
