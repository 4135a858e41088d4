"""``explainlm case DOMAIN``: a whole case study (medicine, law, finance, moderation) in one command,
written as one self-contained HTML report (see :mod:`explainlm.services.case`)."""

from __future__ import annotations

import typer

from explainlm.cli.common import cli_context, emit_json, err_console, split_list

DOMAIN = typer.Argument(..., help="medicine | law | finance | moderation")


def case_command(
    domain: str = DOMAIN,
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Classifier directory: reused when it holds a trained model, else trained there "
        "(default models/minilm-<domain>).",
    ),  # fmt: skip
    train_limit: int | None = typer.Option(None, "--train-limit", help="Training texts."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs."),
    eval_limit: int | None = typer.Option(None, "--limit", help="Test texts measured."),
    faithfulness_limit: int | None = typer.Option(
        None, "--faithfulness-limit", help="Texts of the faithfulness benchmark."
    ),
    importance_limit: int | None = typer.Option(
        None, "--importance-limit", help="Texts of the dataset-level importance (medicine)."
    ),
    llm: str = typer.Option("smollm2-135m", "--llm", help="Zero-shot LLM (finance, law)."),
    llm_limit: int = typer.Option(60, "--llm-limit", help="Test texts the LLM predicts."),
    variants: str = typer.Option("int8,rtn4:g32", "--variants", help="Compressed variants."),
    bios_model: str | None = typer.Option(
        None, "--bios-model", help="Bias-in-Bios classifier (medicine; trained when missing)."
    ),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples per CI."),
    seed: int = typer.Option(0, "--seed"),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Folder for report.html and case.json (default cases/DOMAIN)."
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data directory."),
    device: str | None = typer.Option(None, "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the case document as JSON."),
) -> None:
    """Run a domain case study end to end and write its report.

    Trains the domain's classifier unless --model names a trained one, measures it with CIs,
    explains correct and wrong predictions with the trusted method and checks them, then the
    domain's own analyses (medicine: important terms per condition, a surrogate tree, the
    Bias-in-Bios gender audit; finance: a zero-shot LLM, counterfactuals, a quantized model).

        explainlm case finance --model /work/models/minilm-finance
    """
    from explainlm.services import case as service
    from explainlm.services.base import build_request

    req = build_request(
        service.CaseRequest, domain=domain, model=model, train_limit=train_limit, epochs=epochs,
        eval_limit=eval_limit, faithfulness_limit=faithfulness_limit,
        importance_limit=importance_limit, llm=llm, llm_limit=llm_limit, variants=split_list(variants) or [],
        bios_model=bios_model, n_boot=n_boot, seed=seed, output=output, data_dir=data_dir,
    )  # fmt: skip
    res = service.run(req, cli_context(device))
    if as_json:
        emit_json(res.to_json_doc())
        return
    for item in res.document["summary"]:
        typer.echo(f"{item['question']}\n  {item['answer']}\n")
    err_console.print(f"run {res.run_id}: report written to {res.files[1]}", soft_wrap=True,
                      markup=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the ``case`` command to ``app``."""
    app.command("case")(case_command)
