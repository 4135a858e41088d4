"""``explainlm benchmark``: methods × metrics on a dataset, with CIs, paired tests and reports."""

from __future__ import annotations

from typing import Annotated, Any

import typer

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
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    LabelsOpt,
    MeasuredBudgetOpt,
    ModelOpt,
    PrecisionOpt,
    cli_context,
    console,
    emit_json,
    err_console,
)
from explainlm.services.base import build_request
from explainlm.services.benchmark import DEFAULT_METHODS as METHODS
from explainlm.services.benchmark import DEFAULT_METRICS as METRICS

DatasetOpt = Annotated[
    str,
    typer.Option(
        help="sst2 | sst-trees | sst-rationales | eraser-movies | hatexplain, or a file/folder."
    ),
]
DEFAULT_METHODS = ",".join(METHODS)
DEFAULT_METRICS = ",".join(METRICS)


def benchmark_cmd(
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = "sst-rationales",
    split: Annotated[str | None, typer.Option(help="Dataset split (default: test).")] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = DEFAULT_METHODS,
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics.")] = DEFAULT_METRICS,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="NAME.KEY=VALUE for a method or metric (repeatable)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N examples.")] = None,
    resume: Annotated[
        str | None, typer.Option(help="Resume an interrupted benchmark (or Ray job) by its run id.")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="Folder for results.md, CSV, Parquet and report.html.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data directory.")] = None,
    group: Annotated[
        str | None, typer.Option(help="Annotator group of the rationale CSV, or * for each.")
    ] = None,
    window: Annotated[str, typer.Option(help="Long documents: split | first | none.")] = "split",
    max_words: Annotated[int, typer.Option(help="Words per window.")] = 300,
    chunk_size: Annotated[int, typer.Option(help="Examples per stored chunk.")] = 8,
    test: Annotated[str, typer.Option(help="Paired test: wilcoxon | permutation.")] = "wilcoxon",
    seed: Annotated[int, typer.Option(help="Bootstrap and permutation seed.")] = 0,
    text_column: Annotated[str, typer.Option(help="Text column of a file dataset.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column of a file dataset.")] = "label",
    rationale_column: Annotated[
        str, typer.Option(help="Rationale column of a file dataset.")
    ] = "rationale",
    labels: LabelsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    max_batch_tokens: MeasuredBudgetOpt = None,
    as_json: JsonOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
) -> None:
    """Benchmark explanation methods: faithfulness, plausibility and stability with 95% CIs.

    Examples:

        explainlm benchmark --model models/minilm-sst2 --dataset sst-rationales --limit 100

        explainlm benchmark -m models/minilm-sst2 --dataset sst-trees --metrics comprehensiveness,deletion_auc --output out/bench

        explainlm benchmark --resume 20261123-101500-abc123

        explainlm benchmark -m models/minilm-sst2 --dataset sst-rationales --backend ray --actors 4
    """
    from explainlm.services import benchmark as service

    on_ray = backend != "local"
    fields = {k: v for k, v in locals().items() if k in service.BenchmarkRequest.model_fields}
    fields.update(params=param or [], resume=None if on_ray else resume)
    req = build_request(service.BenchmarkRequest, **fields)
    opts = backend_options(
        backend,
        address,
        actors,
        gpus_per_actor,
        cpus_per_actor,
        results_dir,
        resume if on_ray else None,
    )
    render = emit_json if as_json else print_benchmark
    run_command(
        req,
        cli_context(device),
        opts,
        as_json=as_json,
        render=lambda res: render(res.to_json_doc() if as_json else res),
        show_merged=True,
    )


def print_benchmark(res: Any) -> None:
    from explainlm.report.benchmark import markdown_table, markdown_tests

    console.print(f"benchmark {res.run_id}: {res.model} on {res.dataset}, {res.n} examples")
    console.print(markdown_table(res.table, res.result.higher_is_better), markup=False)
    console.print(markdown_tests(res.tests), markup=False)
    if res.by_group:
        console.print("per annotator group:", markup=False)
        console.print(
            markdown_table(res.by_group, res.result.higher_is_better, ("group", "method")),
            markup=False,
        )
    for f in res.files:
        err_console.print(f"wrote {f}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command("benchmark")(benchmark_cmd)
