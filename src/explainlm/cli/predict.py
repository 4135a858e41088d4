"""``explainlm predict``: labels and probabilities for texts, recorded in the run store."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from explainlm.cli.backend import (
    ActorsOpt,
    AddressOpt,
    BackendOpt,
    CpusOpt,
    GpusOpt,
    ResultsDirOpt,
    ResumeJobOpt,
    backend_options,
    run_command,
)
from explainlm.cli.common import (
    DEFAULT_MODEL,
    EncodingOpt,
    InputOpt,
    JsonOpt,
    LabelsOpt,
    LimitOpt,
    ModelOpt,
    NoTruncateOpt,
    PrecisionOpt,
    TemplateOpt,
    TextColumnOpt,
    TextsArg,
    cli_context,
    console,
    emit_json,
)
from explainlm.services.base import build_request
from explainlm.services.common import unescape

TaskOpt = Annotated[
    str | None,
    typer.Option(help="sequence_classifier | zero_shot | generator (default: the model's own)."),
]
CalibrateOpt = Annotated[
    bool | None,
    typer.Option("--calibrate/--no-calibrate", help="Contextual calibration of zero-shot scores."),
]
ChatOpt = Annotated[
    bool | None,
    typer.Option("--chat/--no-chat", help="Wrap the prompt in the model's chat template."),
]
NewTokensOpt = Annotated[int, typer.Option(help="Generator: tokens to generate.")]


def predict(
    texts: TextsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    task: TaskOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    calibrate: CalibrateOpt = None,
    chat: ChatOpt = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    limit: LimitOpt = None,
    max_new_tokens: NewTokensOpt = 20,
    no_truncate: NoTruncateOpt = False,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, … (default: cuda when present).")
    ] = None,
    precision: PrecisionOpt = "auto",
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
    resume: ResumeJobOpt = None,
    encoding: EncodingOpt = None,
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
        encoding=encoding,
        precision=precision,
    )
    opts = backend_options(
        backend, address, actors, gpus_per_actor, cpus_per_actor, results_dir, resume
    )
    run_command(req, cli_context(device), opts, as_json=as_json, render=_render(model, as_json))


def _render(model: str, as_json: bool) -> Any:
    return lambda res: emit_json(res.to_json_doc()) if as_json else print_predictions(model, res)


def print_predictions(model: str, res: Any) -> None:
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
