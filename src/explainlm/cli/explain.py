"""``explainlm explain``: token/word attributions for classifier predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.text import Text

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    GranularityOpt,
    HtmlOpt,
    InputOpt,
    JsonOpt,
    LabelsOpt,
    LimitOpt,
    MeasuredBudgetOpt,
    MethodOpt,
    ModelOpt,
    NoTruncateOpt,
    ParamOpt,
    PrecisionOpt,
    TemplateOpt,
    TextColumnOpt,
    TextsArg,
    cli_context,
    console,
    emit_json,
    report_written,
)
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


TargetOpt = Annotated[
    str | None,
    typer.Option(
        help="LABEL, or prob|logit|log_odds[:LABEL] (default: predicted label's probability)."
    ),
]
ContrastOpt = Annotated[str | None, typer.Option(help="LABEL:FOIL — explain the logit difference.")]
TopKOpt = Annotated[int, typer.Option(help="How many top units to list.")]
MixedOpt = Annotated[bool, typer.Option("--mixed-precision", help="bfloat16 autocast (GPU).")]
FaithfulnessOpt = Annotated[
    bool,
    typer.Option(
        "--faithfulness", help="Also score each explanation's comprehensiveness/sufficiency."
    ),
]


def explain_cmd(
    texts: TextsArg = None,
    model: ModelOpt = DEFAULT_MODEL,
    method: MethodOpt = None,
    target: TargetOpt = None,
    contrast: ContrastOpt = None,
    granularity: GranularityOpt = "word",
    param: ParamOpt = None,
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    limit: LimitOpt = None,
    max_batch_tokens: MeasuredBudgetOpt = None,
    top_k: TopKOpt = 5,
    no_truncate: NoTruncateOpt = False,
    device: DeviceOpt = None,
    mixed_precision: MixedOpt = False,
    precision: PrecisionOpt = "auto",
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    faithfulness: FaithfulnessOpt = False,
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
        **({"max_batch_tokens": max_batch_tokens} if max_batch_tokens else {}),
        truncate=not no_truncate,
        device=device,
        mixed_precision=mixed_precision,
        precision=precision,
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
