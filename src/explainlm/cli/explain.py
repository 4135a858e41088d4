"""``explainlm explain``: token/word attributions for classifier predictions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.text import Text

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    console,
    emit_json,
    err_console,
    gather_texts,
    load_task,
)
from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.store import open_store

DEFAULT_METHODS = ["integrated_gradients", "occlusion"]


def parse_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["integrated_gradients.steps=20", "lime.n_samples=500"]`` → nested dict (values JSON-parsed)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method or not name:
            raise UserError(f"--param takes METHOD.NAME=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(method, {})[name] = value
    return out


def _styled(e: Any) -> Text:
    units, scores = e.units, e.scores
    special = e.token_special if e.granularity == "token" else [False] * len(units)
    scale = (
        max((abs(s) for s, sp in zip(scores, special, strict=True) if not sp), default=0.0) or 1.0
    )
    text = Text()
    for u, s, sp in zip(units, scores, special, strict=True):
        if sp:
            text.append(u, style="dim")
        else:
            a = min(abs(s) / scale, 1.0)
            r, g, b = (220, 38, 38) if s > 0 else (37, 99, 235)
            mix = [int(255 - (255 - c) * a * 0.85) for c in (r, g, b)]
            text.append(u.strip() or u, style=f"black on rgb({mix[0]},{mix[1]},{mix[2]})")
        text.append(" ")
    return text


def print_explanations(explanations: Sequence[Any], top_k: int) -> None:
    from explainlm.report.heatmap import summary

    last = None
    for e in explanations:
        if e.text != last:
            probs = ", ".join(f"{k} {v:.3f}" for k, v in e.probs.items())
            console.print(Text(f"\n{e.text}", style="bold"))
            console.print(Text(f"predicted {e.predicted} ({probs}) · target {e.target}"))
            last = e.text
        head = Text(f"  {e.method:<22}", style="cyan")
        console.print(head + _styled(e))
        top = ", ".join(f"{u.strip()} {s:+.3f}" for u, s in e.top(top_k))
        extra = f" · δ={e.delta:+.1e}" if e.delta is not None else ""
        console.print(Text(f"  {'':<22}top: {top}{extra}", style="dim"))
        console.print(Text(f"  {'':<22}{summary(e)}", style="italic"))


def explain_cmd(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to explain (or use --input).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    method: Annotated[
        list[str] | None, typer.Option("--method", help="Method name (repeatable).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="LABEL, or prob|logit|log_odds[:LABEL] (default: predicted label's probability)."
        ),
    ] = None,
    contrast: Annotated[
        str | None, typer.Option(help="LABEL:FOIL — explain the logit difference.")
    ] = None,
    granularity: Annotated[str, typer.Option(help="word | token")] = "word",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Method parameter METHOD.NAME=VALUE (repeatable)."),
    ] = None,
    labels: Annotated[str | None, typer.Option(help="Zero-shot labels, comma-separated.")] = None,
    template: Annotated[
        str | None, typer.Option(help="Zero-shot prompt template with {text}.")
    ] = None,
    input_file: Annotated[
        str | None, typer.Option("--input", "-i", help="TSV/CSV/JSONL/TXT file of texts.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --input.")] = "text",
    limit: Annotated[int | None, typer.Option(help="Only the first N texts.")] = None,
    max_batch_tokens: Annotated[
        int, typer.Option(help="Token budget per pass (rows × padded length).")
    ] = DEFAULT_MAX_BATCH_TOKENS,
    top_k: Annotated[int, typer.Option(help="How many top units to list.")] = 5,
    no_truncate: Annotated[
        bool, typer.Option("--no-truncate", help="Error on over-long texts.")
    ] = False,
    device: DeviceOpt = None,
    mixed_precision: Annotated[
        bool, typer.Option("--mixed-precision", help="bfloat16 autocast (GPU).")
    ] = False,
    as_json: JsonOpt = False,
    html: Annotated[
        str | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
) -> None:
    """Explain predictions: which words (or tokens) drove them.

    Examples:

        explainlm explain "This movie was wonderful, touching and funny." --method occlusion --method integrated_gradients

        explainlm explain "A dull film" --contrast positive:negative --method grad_x_input --json

        explainlm explain --input reviews.tsv --text-column sentence --method lime --param lime.n_samples=500 --html out.html
    """
    from explainlm.attribution import explain
    from explainlm.methods import get_method

    methods = method or DEFAULT_METHODS
    params = parse_params(param)
    for m in methods:
        get_method(m, **params.get(m, {}))  # validate names and parameters before loading a model
    unknown = set(params) - set(methods)
    if unknown:
        raise UserError(f"--param for a method not requested: {', '.join(sorted(unknown))}")
    all_texts = gather_texts(texts, input_file, text_column, limit)
    clf = load_task(model, labels=labels, template=template, device=device)
    run_params = {
        "methods": methods,
        "method_params": params,
        "target": target,
        "contrast": contrast,
        "granularity": granularity,
        "n_texts": len(all_texts),
        "input": input_file,
        "mixed_precision": mixed_precision,
        **clf.describe(),
    }
    store = open_store()
    with store.recorded_run("explain", model=model, params=run_params) as run:
        res = explain(
            all_texts,
            clf,
            methods,
            target=target,
            contrast=contrast,
            granularity=granularity,
            method_params=params,
            max_batch_tokens=max_batch_tokens,
            truncation=not no_truncate,
            progress=True,
            mixed_precision=mixed_precision,
        )
        res.run_id = run.run_id
        store.add_explanations(run.run_id, res)
        run.summary = {"n_explanations": len(res)}
        if html:
            from explainlm.report.heatmap import explanations_report
            from explainlm.report.html import write_path

            path = write_path(
                html, explanations_report(res, meta={"model": model, "run": run.run_id})
            )
            run.summary["report"] = str(path)
    if as_json:
        docs = [e.to_json_doc() for e in res]
        emit_json({"run_id": run.run_id, "model": model, "explanations": docs})
    else:
        print_explanations(res, top_k)
    if html:
        err_console.print(
            f"report written to {run.summary['report']}", soft_wrap=True, markup=False
        )


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
