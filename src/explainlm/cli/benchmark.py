"""``explainlm benchmark``: methods × metrics on a dataset, with CIs, paired tests and reports."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    LabelsOpt,
    ModelOpt,
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
        str | None, typer.Option(help="Resume an interrupted benchmark run by its id.")
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
    as_json: JsonOpt = False,
) -> None:
    """Benchmark explanation methods: faithfulness, plausibility and stability with 95% CIs.

    Examples:

        explainlm benchmark --model models/minilm-sst2 --dataset sst-rationales --limit 100

        explainlm benchmark -m models/minilm-sst2 --dataset sst-trees --metrics comprehensiveness,deletion_auc --output out/bench

        explainlm benchmark --resume 20261123-101500-abc123
    """
    from explainlm.services import benchmark as service

    req = build_request(
        service.BenchmarkRequest,
        model=model,
        dataset=dataset,
        split=split,
        methods=methods,
        metrics=metrics,
        params=param or [],
        limit=limit,
        resume=resume,
        output=output,
        data_dir=data_dir,
        group=group,
        window=window,
        max_words=max_words,
        chunk_size=chunk_size,
        test=test,
        seed=seed,
        text_column=text_column,
        label_column=label_column,
        rationale_column=rationale_column,
        labels=labels,
        device=device,
    )
    res = service.run(req, cli_context(device))
    if as_json:
        emit_json(res.to_json_doc())
        return
    print_benchmark(res)


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
