"""``explainlm train``: fine-tune an encoder into a sequence classifier (see :mod:`explainlm.training`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from explainlm.errors import UserError


def _split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise UserError(f"--label-names {text!r}: give comma-separated, non-empty names")
    return names


def _short(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metrics for the run store and --json: accuracy, macro-F1, n and the per-class report."""
    if metrics is None:
        return None
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "n", "report") if k in metrics}


def train_command(
    train_file: Path = typer.Argument(
        ...,
        help="Labelled training file (.tsv, .csv or .jsonl), or a dataset NAME:SPLIT (e.g. eraser-movies:train).",
    ),
    dev: Path | None = typer.Option(
        None,
        "--dev",
        help="Dev file: evaluated every epoch, "
        "used for early stopping and choosing the best epoch.",
    ),
    test: Path | None = typer.Option(
        None, "--test", help="Test file: the best model is evaluated on it after training."
    ),
    text_column: str = typer.Option("text", "--text-column", help="Column holding the text."),
    label_column: str = typer.Option("label", "--label-column", help="Column holding the label."),
    label_names: str | None = typer.Option(
        None,
        "--label-names",
        help="Comma-separated names for the sorted label values, e.g. negative,positive.",
    ),
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
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (no progress bars)."
    ),
) -> None:
    """Fine-tune an encoder (default: MiniLM) into a sequence classifier and save it.

    The saved directory works with every other command as --model.

    Example (SST-2 sentiment; add --test FILE to report test accuracy of the best epoch):

        explainlm train ../shared/data/sst2/train.tsv --dev ../shared/data/sst2/dev.tsv --text-column sentence --label-names negative,positive --output models/minilm-sst2

    Built-in datasets by name and split (ERASER texts live in a docs/ folder):

        explainlm train eraser-movies:train --dev eraser-movies:val --test eraser-movies:test --max-length 512 --output models/minilm-movies
    """
    from explainlm.store import open_store
    from explainlm.training import evaluate_classifier, format_metrics, train_classifier

    names = _split_names(label_names)
    params: dict[str, Any] = {
        "train_file": str(train_file),
        "dev_file": str(dev) if dev else None,
        "test_file": str(test) if test else None,
        "text_column": text_column,
        "label_column": label_column,
        "label_names": names,
        "output": str(output),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "max_length": max_length,
        "seed": seed,
        "patience": patience,
        "limit": limit,
        "dev_limit": dev_limit,
    }

    def log(message: str) -> None:
        typer.echo(message, err=as_json)

    store = open_store()
    run_id = store.start_run("train", model=base_model, params=params)
    try:
        result = train_classifier(
            train_file,
            dev,
            output_dir=output,
            text_column=text_column,
            label_column=label_column,
            label_names=names,
            base_model=base_model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            max_length=max_length,
            seed=seed,
            patience=patience,
            limit=limit,
            dev_limit=dev_limit,
            progress=not as_json,
            log=log,
        )
        test_metrics = None
        if test is not None:
            from explainlm.models import load_model

            classifier = load_model(str(result.output_dir))
            test_metrics = evaluate_classifier(
                classifier,
                test,
                text_column=text_column,
                label_column=label_column,
                max_length=max_length,
            )
            log(format_metrics(test_metrics, result.labels, f"test ({test})"))
        summary = {
            "output_dir": str(result.output_dir),
            "labels": result.labels,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "dev": _short(result.dev_metrics),
            "test": _short(test_metrics),
            "train_seconds": result.train_seconds,
            "device": result.device,
        }
        store.finish_run(run_id, summary=summary)
    except KeyboardInterrupt:
        store.finish_run(run_id, status="interrupted", error="interrupted")
        raise
    except BaseException as e:
        store.finish_run(run_id, status="failed", error=str(e) or type(e).__name__)
        raise
    if as_json:
        doc = {"run_id": run_id, **{k: v for k, v in summary.items() if k != "epochs_run"}}
        typer.echo(json.dumps(doc, indent=2))
    else:
        acc = f"; test accuracy {test_metrics['accuracy']:.4f}" if test_metrics else ""
        typer.echo(f"run {run_id}: saved {result.output_dir} (best epoch {result.best_epoch}){acc}")


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""
    app.command("train")(train_command)
