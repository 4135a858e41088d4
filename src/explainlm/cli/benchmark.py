"""``explainlm benchmark``: methods × metrics on a dataset, with CIs, paired tests and reports."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    console,
    emit_json,
    err_console,
    load_task,
    split_list,
)
from explainlm.errors import UserError

DEFAULT_METHODS = "integrated_gradients,occlusion,random"
DEFAULT_METRICS = "comprehensiveness,sufficiency,token_f1,auprc"


def _split_params(items: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--param NAME.KEY=VALUE`` for methods and metrics alike; split by which registry knows NAME."""
    from explainlm.cli.explain import parse_params
    from explainlm.evaluation import METRICS
    from explainlm.methods import METHODS

    parsed = parse_params(items)
    methods = {k: v for k, v in parsed.items() if k in METHODS}
    metrics = {k: v for k, v in parsed.items() if k in METRICS}
    unknown = set(parsed) - set(methods) - set(metrics)
    if unknown:
        raise UserError(f"--param for an unknown method or metric: {', '.join(sorted(unknown))}")
    return methods, metrics


def benchmark_cmd(
    model: ModelOpt = DEFAULT_MODEL,
    dataset: Annotated[
        str,
        typer.Option(
            help="sst2 | sst-trees | sst-rationales | eraser-movies | hatexplain, or a file/folder."
        ),
    ] = "sst-rationales",
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
    labels: Annotated[str | None, typer.Option(help="Zero-shot labels, comma-separated.")] = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Benchmark explanation methods: faithfulness, plausibility and stability with 95% CIs.

    Examples:

        explainlm benchmark --model models/minilm-sst2 --dataset sst-rationales --limit 100

        explainlm benchmark -m models/minilm-sst2 --dataset sst-trees --metrics comprehensiveness,deletion_auc --output out/bench

        explainlm benchmark --resume 20261123-101500-abc123
    """
    from explainlm.datasets import load_dataset, windows
    from explainlm.evaluation import METRICS
    from explainlm.evaluation.benchmark import run_benchmark
    from explainlm.evaluation.stats import TESTS
    from explainlm.methods import get_method
    from explainlm.store import open_store

    store = open_store()
    if resume:  # the run's own settings win: nothing has to be repeated on the command line
        rec = store.get_run(resume)
        p = rec.params
        model = rec.model or model
        dataset, split, limit = p.get("dataset", dataset), p.get("split"), p.get("limit")
        methods, metrics = ",".join(p.get("methods", [])), ",".join(p.get("metrics", []))
        group, window = p.get("group"), p.get("window", window)
        max_words, test, seed = (
            p.get("max_words", max_words),
            p.get("test", test),
            p.get("seed", seed),
        )
        labels = p.get("labels", labels)
        method_params, metric_params = p.get("method_params", {}), p.get("metric_params", {})
    else:
        method_params, metric_params = _split_params(param)
    method_list = split_list(methods) or []
    metric_list = split_list(metrics) or []
    for m in method_list:
        get_method(m, **method_params.get(m, {}))
    for m in metric_list:
        if m not in METRICS:
            raise UserError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
    if test not in TESTS:
        raise UserError(f"--test must be one of {', '.join(TESTS)}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    examples = load_dataset(
        dataset,
        split=split,
        data_dir=data_dir,
        group=group,
        text_column=text_column,
        label_column=label_column,
        rationale_column=rationale_column,
    )
    clf = load_task(model, labels=labels, device=device)
    max_len = int(getattr(clf.wrapper, "max_length", 512))
    examples = windows(
        examples,
        max_words=max_words,
        strategy=window,
        count_tokens=lambda t: len(clf.encode([t])[0]),
        max_tokens=max_len,
    )
    if limit is not None:
        examples = examples[:limit]
    res = run_benchmark(
        clf,
        examples,
        method_list,
        metric_list,
        model_name=model,
        dataset_name=dataset,
        method_params=method_params,
        metric_params=metric_params,
        store=store,
        resume=resume,
        chunk_size=chunk_size,
        progress=True,
        test=test,
        seed=seed,
        output=output,
        extra_params={
            "split": split,
            "limit": limit,
            "group": group,
            "window": window,
            "max_words": max_words,
            "labels": labels,
        },
    )
    if as_json:
        emit_json(res.to_json_doc())
        return
    from explainlm.evaluation.report import markdown_table, markdown_tests

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
