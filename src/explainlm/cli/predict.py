"""``explainlm predict``: labels and probabilities for texts, recorded in the run store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from explainlm.cli.common import DEFAULT_MODEL, JsonOpt, ModelOpt, cli_context, console, emit_json
from explainlm.services.base import build_request
from explainlm.services.common import unescape


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
    from explainlm.services import predict as service

    req = build_request(
        service.PredictRequest,
        texts=texts or [],
        model=model,
        task=task,
        labels=labels,
        template=unescape(template),
        calibrate=calibrate,
        chat=chat,
        input=input_file,
        text_column=text_column,
        limit=limit,
        max_new_tokens=max_new_tokens,
        truncate=not no_truncate,
        device=device,
    )
    res = service.run(req, cli_context(device))
    if as_json:
        emit_json(res.to_json_doc())
        return
    table = Table(title=escape(f"{model} · run {res.run_id}"))
    table.add_column("text", overflow="fold", max_width=70)
    table.add_column("label", style="bold")
    table.add_column("p", justify="right")
    for p in res.predictions:
        prob = p["probs"].get(p["label"], 0.0)
        table.add_row(escape(p["text"]), escape(p["label"]), f"{prob:.3f}")
        for w in p.get("warnings", []):
            table.add_row(f"[yellow]warning: {escape(w)}[/yellow]", "", "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(predict)
