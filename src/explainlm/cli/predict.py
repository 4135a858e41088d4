"""``explainlm predict``: labels and probabilities for texts, recorded in the run store."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from tqdm import tqdm

from explainlm.cli.common import (
    DEFAULT_MODEL,
    JsonOpt,
    ModelOpt,
    console,
    emit_json,
    gather_texts,
    load_task,
)
from explainlm.store import open_store

CHUNK = 128


def predict(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to classify (or use --input).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    task: Annotated[
        str | None,
        typer.Option(
            help="sequence_classifier | zero_shot | generator (default: the model's own)."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Zero-shot labels, comma-separated, e.g. negative,positive.")
    ] = None,
    template: Annotated[
        str | None, typer.Option(help="Zero-shot prompt template with {text}.")
    ] = None,
    calibrate: Annotated[
        bool | None,
        typer.Option(
            "--calibrate/--no-calibrate", help="Contextual calibration of zero-shot scores."
        ),
    ] = None,
    chat: Annotated[
        bool | None,
        typer.Option("--chat/--no-chat", help="Wrap the prompt in the model's chat template."),
    ] = None,
    input_file: Annotated[
        str | None, typer.Option("--input", "-i", help="TSV/CSV/JSONL/TXT file of texts.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --input.")] = "text",
    limit: Annotated[int | None, typer.Option(help="Only the first N texts.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Generator: tokens to generate.")] = 20,
    no_truncate: Annotated[
        bool,
        typer.Option(
            "--no-truncate", help="Error on texts over the model's limit instead of truncating."
        ),
    ] = False,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, … (default: cuda when present).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict labels and probabilities.

    Examples:

        explainlm predict "This movie was wonderful, touching and funny." --model smollm2-135m --json

        explainlm predict --input ../shared/data/sst2/test.tsv --text-column sentence --limit 50

        explainlm predict "Patient reports chest pain" --labels urgent,routine --template "Note: {text}\\nTriage:"
    """
    all_texts = gather_texts(texts, input_file, text_column, limit)
    clf = load_task(
        model, task, labels=labels, template=template, calibrate=calibrate, chat=chat, device=device
    )
    params: dict[str, Any] = {
        "n_texts": len(all_texts),
        **clf.describe(),
        "input": input_file,
        "truncate": not no_truncate,
    }
    store = open_store()
    preds: list[dict[str, Any]] = []
    with store.recorded_run("predict", model=model, params=params) as run:
        chunks = [all_texts[i : i + CHUNK] for i in range(0, len(all_texts), CHUNK)]
        for chunk in tqdm(chunks, desc="predict", unit="batch", disable=len(chunks) < 2):
            kw: dict[str, Any] = {"truncation": not no_truncate}
            if clf.task == "generator":
                kw["max_new_tokens"] = max_new_tokens
            out = [p.to_dict() for p in clf.predict(chunk, **kw)]
            store.add_predictions(run.run_id, out, start=len(preds))
            preds += out
        labels_seen: dict[str, int] = {}
        for p in preds:
            labels_seen[p["label"]] = labels_seen.get(p["label"], 0) + 1
        run.summary = {"n": len(preds), "label_counts": labels_seen}
    if as_json:
        emit_json({"run_id": run.run_id, "model": model, "predictions": preds})
        return
    table = Table(title=escape(f"{model} · run {run.run_id}"))
    table.add_column("text", overflow="fold", max_width=70)
    table.add_column("label", style="bold")
    table.add_column("p", justify="right")
    for p in preds:
        prob = p["probs"].get(p["label"], 0.0)
        table.add_row(escape(p["text"]), escape(p["label"]), f"{prob:.3f}")
        for w in p.get("warnings", []):
            table.add_row(f"[yellow]warning: {escape(w)}[/yellow]", "", "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(predict)
