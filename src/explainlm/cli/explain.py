"""``explainlm explain``: token/word attributions for classifier predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.text import Text

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    cli_context,
    console,
    emit_json,
    report_written,
)
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import build_request
from explainlm.services.common import parse_params, unescape
from explainlm.services.explain import DEFAULT_METHODS

__all__ = ["DEFAULT_METHODS", "explain_cmd", "parse_params", "print_explanations", "register"]


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


def print_explanations(
    explanations: Sequence[Any], top_k: int, faithfulness: Sequence[dict[str, Any]] | None = None
) -> None:
    from explainlm.report.heatmap import summary

    last = None
    for i, e in enumerate(explanations):
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
        if faithfulness is not None:
            f = faithfulness[i]
            comp, suff = (_signed(f.get(k)) for k in ("comprehensiveness", "sufficiency"))
            line = f"comprehensiveness {comp} ↑ · sufficiency {suff} ↓"
            console.print(Text(f"  {'':<22}{line}", style="dim"))


def _signed(v: Any) -> str:
    return "–" if v is None else f"{float(v):+.3f}"


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
    faithfulness: Annotated[
        bool,
        typer.Option(
            "--faithfulness", help="Also score each explanation's comprehensiveness/sufficiency."
        ),
    ] = False,
) -> None:
    """Explain predictions: which words (or tokens) drove them.

    Examples:

        explainlm explain "This movie was wonderful, touching and funny." --method occlusion --method integrated_gradients

        explainlm explain "A dull film" --contrast positive:negative --method grad_x_input --json

        explainlm explain --input reviews.tsv --text-column sentence --method lime --param lime.n_samples=500 --html out.html
    """
    from explainlm.services import explain as service

    req = build_request(
        service.ExplainRequest,
        texts=texts or [],
        model=model,
        methods=method or service.DEFAULT_METHODS,
        target=target,
        contrast=contrast,
        granularity=granularity,
        params=param or [],
        labels=labels,
        template=unescape(template),
        input=input_file,
        text_column=text_column,
        limit=limit,
        max_batch_tokens=max_batch_tokens,
        truncate=not no_truncate,
        device=device,
        mixed_precision=mixed_precision,
        html=html,
        faithfulness=faithfulness,
    )
    res = service.run(req, cli_context(device))
    if as_json:
        emit_json(res.to_json_doc())
    else:
        print_explanations(res.explanations, top_k, res.faithfulness)
    report_written(res.report)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
