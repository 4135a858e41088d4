"""``explainlm audit fairness|counterfactual|lm-bias|bios``: thin adapters over services/audit.py
(``--backend ray``: the per-item model work on a Ray cluster, the statistics here)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from explainlm.cli.backend import (
    ActorsOpt,
    AddressOpt,
    BackendOpt,
    CpusOpt,
    GpusOpt,
    ResultsDirOpt,
    backend_options,
    run_command,
)
from explainlm.cli.common import (
    BootOpt,
    BudgetOpt,
    DeviceOpt,
    HtmlOpt,
    JsonOpt,
    console,
    emit_json,
    split_list,
)

app = typer.Typer(
    help="Fairness and social-bias audits with confidence intervals and hypothesis tests.",
    no_args_is_help=True,
)

PermOpt = Annotated[int, typer.Option("--n-perm", help="Permutations per test (0: no tests).")]
CorrOpt = Annotated[
    str, typer.Option("--correction", help="holm (family-wise), bh (false discovery) or none.")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of resampling and sampling.")]
ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        help="Continue an interrupted audit run (its run id; with --backend ray: the job).",
    ),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Only the first N items.")]
# One --model for the audits of a classifier (required in some, optional in others); typer copies
# an option's info per parameter, so it can be shared.
_AUDITED_MODEL = typer.Option("--model", "-m", help="Classifier to audit.")


def _run(cls_name: str, as_json: bool, backend: dict[str, Any], **fields: Any) -> None:
    from explainlm.progress import Progress, TerminalProgress
    from explainlm.services import audit
    from explainlm.services.base import LocalModels, ServiceContext, build_request
    from explainlm.store import open_store

    on_ray = backend["backend"] != "local"
    resume = fields.pop("resume")
    req = build_request(getattr(audit, cls_name), **fields, resume=None if on_ray else resume)
    opts = backend_options(**backend, resume=resume if on_ray else None)
    ctx = ServiceContext(
        store=open_store(),
        progress=Progress() if as_json else TerminalProgress(),
        models=LocalModels(device=fields.get("device")),
        source="cli",
    )
    run_command(req, ctx, opts, as_json=as_json, render=_render(as_json), show_merged=True)


def _render(as_json: bool) -> Any:
    def render(result: Any) -> None:
        if as_json:
            emit_json(result.to_json_doc())
            return
        console.print(f"[bold]{escape(result.kind)} audit[/bold] · run {result.run_id}")
        for line in result.report.get("conclusions", []):
            console.print(f"• {escape(line)}", soft_wrap=True)
        for note in result.report.get("notes", []):
            console.print(f"[dim]note: {escape(note)}[/dim]", soft_wrap=True)
        for f in result.files:
            console.print(f"report: {escape(f)}")

    return render


def _backend(options: dict[str, Any]) -> dict[str, Any]:
    """The backend options among a command's (its ``locals()``)."""
    keys = ("backend", "address", "actors", "gpus_per_actor", "cpus_per_actor", "results_dir")
    return {k: options[k] for k in keys}


@app.command("fairness")
def fairness(
    data: Annotated[str, typer.Argument(help="Labelled table (TSV/CSV/JSONL) or biosbias:SPLIT.")],
    group: Annotated[str, typer.Option("--group", "-g", help="Group column(s), comma-separated.")],
    model: Annotated[str | None, _AUDITED_MODEL] = None,
    text_column: Annotated[str, typer.Option(help="Text column.")] = "text",
    label_column: Annotated[
        str | None, typer.Option(help="Gold label column (none: no gold).")
    ] = "label",
    prediction_column: Annotated[
        str | None, typer.Option(help="Audit given predictions instead of a model's.")
    ] = None,
    score_column: Annotated[str | None, typer.Option(help="Score of the positive label.")] = None,
    positive_label: Annotated[
        str | None, typer.Option("--positive-label", help="Favourable label(s), comma-separated.")
    ] = None,
    intersections: Annotated[
        bool,
        typer.Option("--intersections/--no-intersections", help="Audit the column combination."),
    ] = True,
    min_group_size: Annotated[int, typer.Option(help="Smallest group that gets a CI.")] = 20,
    limit: LimitOpt = None,
    n_boot: BootOpt = 1000,
    n_perm: PermOpt = 1000,
    correction: CorrOpt = "holm",
    seed: SeedOpt = 0,
    html: HtmlOpt = None,
    resume: ResumeOpt = None,
    max_batch_tokens: BudgetOpt = 4096,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
) -> None:
    """Group fairness: selection rates, disparate impact, equal opportunity, equalized odds, ….

    Examples:

        explainlm audit fairness biosbias:test --group gender --model /work/models/minilm-biosbias --min-group-size 5 --html bios.html

        explainlm audit fairness loans.csv --group gender,race --prediction-column approved --label-column repaid --positive-label yes
    """
    _run("FairnessAuditRequest", as_json, _backend(locals()),
         data=data, group_columns=split_list(group), model=model,
         text_column=text_column, label_column=label_column, prediction_column=prediction_column,
         score_column=score_column, positive_labels=split_list(positive_label),
         intersections=intersections, min_group_size=min_group_size, limit=limit, n_boot=n_boot,
         n_perm=n_perm, correction=correction, seed=seed, html=html, resume=resume,
         max_batch_tokens=max_batch_tokens, device=device)  # fmt: skip


@app.command("counterfactual")
def counterfactual(
    model: Annotated[str, _AUDITED_MODEL],
    data: Annotated[str, typer.Option("--data", help="eec, or a table of texts to swap.")] = "eec",
    swap: Annotated[str, typer.Option(help="gender, race, or a CSV/TSV of term pairs.")] = "gender",
    label: Annotated[str | None, typer.Option(help="Label whose probability is compared.")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --data.")] = "text",
    attribution_limit: Annotated[
        int, typer.Option(help="Texts explained for the identity attribution mass (0: none).")
    ] = 200,
    attribution_method: Annotated[str, typer.Option(help="Attribution method.")] = "occlusion",
    limit: LimitOpt = None,
    n_boot: BootOpt = 1000,
    n_perm: PermOpt = 1000,
    correction: CorrOpt = "holm",
    seed: SeedOpt = 0,
    html: HtmlOpt = None,
    resume: ResumeOpt = None,
    max_batch_tokens: BudgetOpt = 4096,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
) -> None:
    """Counterfactual identity fairness: score gaps when only a person's identity changes.

    Examples:

        explainlm audit counterfactual --model /work/models/minilm-sst2 --data eec --swap gender --html eec.html

        explainlm audit counterfactual --model smollm2-135m --data reviews.tsv --swap my_pairs.csv --json

        explainlm audit counterfactual --model /work/models/minilm-sst2 --data eec --backend ray --actors 4
    """
    _run("CounterfactualAuditRequest", as_json, _backend(locals()),
         model=model, data=data, swap=swap, label=label,
         text_column=text_column, attribution_limit=attribution_limit,
         attribution_method=attribution_method, limit=limit, n_boot=n_boot, n_perm=n_perm,
         correction=correction, seed=seed, html=html, resume=resume,
         max_batch_tokens=max_batch_tokens, device=device)  # fmt: skip


@app.command("lm-bias")
def lm_bias(
    benchmark: Annotated[str, typer.Argument(help="crows-pairs | pairs | bbq | winobias | bold")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Causal or masked LM.")
    ] = "smollm2-135m",
    pairs: Annotated[
        str | None, typer.Option("--pairs", help="Minimal-pairs file (pairs).")
    ] = None,
    bias_types: Annotated[str | None, typer.Option(help="Only these bias types.")] = None,
    categories: Annotated[str | None, typer.Option(help="BBQ categories.")] = None,
    per_category: Annotated[
        int | None, typer.Option(help="BBQ: random items per category.")
    ] = None,
    split: Annotated[str, typer.Option(help="WinoBias split: dev or test.")] = "test",
    domains: Annotated[str, typer.Option(help="BOLD domains.")] = "gender",
    per_group: Annotated[int, typer.Option(help="BOLD: prompts per group.")] = 20,
    max_new_tokens: Annotated[int, typer.Option(help="BOLD: tokens to generate.")] = 20,
    classifier: Annotated[
        str, typer.Option(help="BOLD: classifier scoring generations.")
    ] = "smollm2-135m",
    label: Annotated[
        str, typer.Option(help="BOLD: label whose probability is the score.")
    ] = "positive",
    limit: LimitOpt = None,
    n_boot: BootOpt = 1000,
    correction: CorrOpt = "holm",
    seed: SeedOpt = 0,
    html: HtmlOpt = None,
    resume: ResumeOpt = None,
    max_batch_tokens: BudgetOpt = 4096,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
) -> None:
    """Social bias of a language model by (pseudo-)log-likelihood, or of its generations (BOLD).

    Examples:

        explainlm audit lm-bias crows-pairs --model smollm2-135m --html crows.html

        explainlm audit lm-bias pairs --pairs my_pairs.csv --json

        explainlm audit lm-bias bbq --per-category 100

        explainlm audit lm-bias crows-pairs --model smollm2-135m --backend ray --address auto --actors 8
    """
    _run("LMBiasAuditRequest", as_json, _backend(locals()),
         benchmark=benchmark, model=model, pairs_file=pairs,
         bias_types=split_list(bias_types), categories=split_list(categories),
         per_category=per_category, split=split, domains=split_list(domains), per_group=per_group,
         max_new_tokens=max_new_tokens, classifier=classifier, label=label, limit=limit,
         n_boot=n_boot, correction=correction, seed=seed, html=html, resume=resume,
         max_batch_tokens=max_batch_tokens, device=device)  # fmt: skip


@app.command("bios")
def bios(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Bias-in-Bios occupation classifier.")
    ],
    baseline: Annotated[
        str | None, typer.Option(help="A model to compare with (before a mitigation).")
    ] = None,
    split: Annotated[str, typer.Option(help="train, test or all.")] = "test",
    plausibility: Annotated[
        bool, typer.Option("--plausibility/--no-plausibility", help="Score against rationales.")
    ] = True,
    min_group_size: Annotated[int, typer.Option(help="Smallest cell that gets a CI.")] = 5,
    limit: LimitOpt = None,
    n_boot: BootOpt = 1000,
    correction: CorrOpt = "holm",
    seed: SeedOpt = 0,
    html: HtmlOpt = None,
    resume: ResumeOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
) -> None:
    """Bias in Bios: TPR gap by gender per occupation, gendered-word attribution, plausibility.

    Example (the mitigation's before/after as a paired comparison):

        explainlm audit bios --model /work/models/minilm-biosbias-cda --baseline /work/models/minilm-biosbias
    """
    _run("BiosAuditRequest", as_json, _backend(locals()),
         model=model, baseline=baseline, split=split,
         plausibility=plausibility, min_group_size=min_group_size, limit=limit, n_boot=n_boot,
         correction=correction, seed=seed, html=html, resume=resume, device=device)  # fmt: skip


def register(root: typer.Typer) -> None:
    """Add the ``audit`` command group."""
    root.add_typer(app, name="audit")
