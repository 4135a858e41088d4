"""``explainlm explain``: token/word attributions for classifier predictions."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any

import typer
from rich.text import Text

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
    EncodingOpt,
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

__all__ = [
    "DEFAULT_METHODS",
    "check_line",
    "explain_cmd",
    "parse_params",
    "print_explanations",
    "print_glossary",
    "register",
]


def _styled(e: Any) -> Text:
    from explainlm.report.trust import color_strength

    units, scores = e.units, e.scores
    special = e.token_special if e.granularity == "token" else [False] * len(units)
    scale = (
        max((abs(s) for s, sp in zip(scores, special, strict=True) if not sp), default=0.0) or 1.0
    )
    strength = color_strength(e.check, e.target, len(e.feature_scores()))  # tiny effects: faint
    text = Text()
    for u, s, sp in zip(units, scores, special, strict=True):
        if sp:
            text.append(u, style="dim")
        else:
            a = min(abs(s) / scale, 1.0) * strength
            r, g, b = (220, 38, 38) if s > 0 else (37, 99, 235)
            mix = [int(255 - (255 - c) * a * 0.85) for c in (r, g, b)]
            text.append(u.strip() or u, style=f"black on rgb({mix[0]},{mix[1]},{mix[2]})")
        text.append(" ")
    return text


def print_explanations(
    explanations: Sequence[Any], top_k: int, faithfulness: Sequence[dict[str, Any]] | None = None
) -> None:
    from explainlm.report.heatmap import method_name, summary
    from explainlm.report.trust import agreement, agreement_sentence

    last = None
    for i, e in enumerate(explanations):
        if e.text != last:
            probs = ", ".join(f"{k} {v:.3f}" for k, v in e.probs.items())
            console.print(Text(f"\n{e.text}", style="bold"))
            console.print(Text(f"predicted {e.predicted} (prob: {probs}) · target {e.target}"))
            group = [x for x in explanations if x.text == e.text]
            agree = agreement({method_name(x): x.feature_scores() for x in group})
            if agree:
                console.print(Text(agreement_sentence(agree), style="dim"))
            last = e.text
        head = Text(f"  {method_name(e):<22} ", style="cyan")
        console.print(head + _styled(e))
        top = ", ".join(f"{u.strip()} {s:+.3f}" for u, s in e.top(top_k))
        extra = f" · δ={e.delta:+.1e}" if e.delta is not None else ""
        console.print(Text(f"  {'':<22}top: {top}{extra}", style="dim"))
        console.print(check_line(e))
        console.print(Text(f"  {'':<22}{summary(e)}", style="italic"))
        if e.auto:
            console.print(Text(f"  {'':<22}{e.auto['reason']}", style="dim"))
        if faithfulness is not None:
            f = faithfulness[i]
            comp, suff = (_signed(f.get(k)) for k in ("comprehensiveness", "sufficiency"))
            line = f"comprehensiveness {comp} ↑ · sufficiency {suff} ↓"
            console.print(Text(f"  {'':<22}{line}", style="dim"))


def _signed(v: Any) -> str:
    return "–" if v is None else f"{float(v):+.3f}"


VERDICT_STYLE = {"passes": "green", "fails": "red", "undecided": "yellow", "unchecked": "yellow"}


def check_line(e: Any) -> Text:
    """The verdict of the explanation's faithfulness check and its numbers, on one line."""
    from explainlm.report.trust import verdict

    v = verdict(e.check, e.target, len(e.feature_scores()))
    words = {
        "passes": "passes the faithfulness check",
        "fails": "FAILS the faithfulness check (not evidence of why)",
        "undecided": "one unit: the check cannot judge",
        "unchecked": "faithfulness not checked",
    }[v["status"]] + (" (weak effect)" if v["weak"] else "")
    line = Text(f"  {'':<22}")
    line.append(words, style=VERDICT_STYLE[v["status"]])
    if e.check:
        rand = v.get("random_comprehensiveness")
        line.append(
            f" · comprehensiveness {_signed(e.check.get('comprehensiveness'))} "
            f"(random {_signed(rand)}) · sufficiency {_signed(e.check.get('sufficiency'))}",
            style="dim",
        )
    return line


def print_glossary(terms: Sequence[str], target: str = "prob") -> None:
    """One line per term shown: what it means."""
    from explainlm.report.trust import glossary_lines, reference_note

    console.print(Text("\nTerms:", style="bold dim"))
    for line in glossary_lines(terms):
        console.print(Text(f"  {line}", style="dim"))
    console.print(Text(f"  colours: {reference_note(target)}", style="dim"))


EXPLAIN_TERMS = (
    "prob",
    "comprehensiveness",
    "sufficiency",
    "random",
    "δ",
    "Spearman ρ",
    "top-k overlap",
)


TargetOpt = Annotated[
    str | None,
    typer.Option(
        help="LABEL, or prob|logit|log_odds[:LABEL] (default: predicted label's probability)."
    ),
]
ContrastOpt = Annotated[str | None, typer.Option(help="LABEL:FOIL — explain the logit difference.")]
TopKOpt = Annotated[int, typer.Option(help="How many top units to list.")]
MixedOpt = Annotated[bool, typer.Option("--mixed-precision", help="bfloat16 autocast (GPU).")]
NoCheckOpt = Annotated[
    bool,
    typer.Option(
        "--no-check", help="Skip the faithfulness check of each explanation (auto keeps it)."
    ),
]
ForbidOpt = Annotated[
    list[str] | None,
    typer.Option("--forbid", help="A method auto must never use (repeatable)."),
]
RecalibrateOpt = Annotated[
    bool, typer.Option("--recalibrate", help="Recompute auto's per-model calibration.")
]
FaithfulnessOpt = Annotated[
    bool,
    typer.Option(
        "--faithfulness", help="Also score each explanation's comprehensiveness/sufficiency."
    ),
]


ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        help="Continue an interrupted explain run (its id; no texts needed); with --backend ray, "
        "the Ray job.",
    ),
]
ChunkOpt = Annotated[int, typer.Option("--chunk-size", help="Texts per stored chunk.")]


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
    no_check: NoCheckOpt = False,
    forbid: ForbidOpt = None,
    recalibrate: RecalibrateOpt = False,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
    resume: ResumeOpt = None,
    chunk_size: ChunkOpt = 64,
    encoding: EncodingOpt = None,
) -> None:
    """Explain predictions: which words (or tokens) drove them.

    The default method, auto, runs the most faithful affordable method for the model and says why;
    every explanation carries its faithfulness check (--no-check turns it off).

    Examples:

        explainlm explain "This movie was wonderful, touching and funny." --method occlusion --method integrated_gradients

        explainlm explain "A dull film" --contrast positive:negative --method grad_x_input --json

        explainlm explain --input reviews.tsv --text-column sentence --method lime --param lime.n_samples=500 --html out.html

        explainlm explain --input corpus.parquet --method occlusion --backend ray --actors 4
        explainlm explain --resume 20261123-101500-a1b2c3
    """
    from explainlm.errors import UserError

    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    req = _request(locals())
    opts = backend_options(
        backend, address, actors, gpus_per_actor, cpus_per_actor, results_dir,
        resume if backend != "local" else None,
    )  # fmt: skip
    render = partial(_render, as_json=as_json, top_k=top_k)
    run_command(req, cli_context(device), opts, as_json=as_json, render=render)


def _request(o: dict[str, Any]) -> Any:
    """The explain request from the command's options (``locals()`` of :func:`explain_cmd`)."""
    from explainlm.services import explain as service

    same = ("model", "target", "contrast", "granularity", "labels", "text_column", "limit",
            "max_batch_tokens", "precision", "device", "mixed_precision", "html", "faithfulness",
            "recalibrate", "chunk_size", "encoding")  # fmt: skip
    return build_request(
        service.ExplainRequest,
        **{k: o[k] for k in same},
        texts=o["texts"] or [],
        methods=o["method"] or service.DEFAULT_METHODS,
        params=o["param"] or [],
        template=unescape(o["template"]),
        input=o["input_file"],
        truncate=not o["no_truncate"],
        check=not o["no_check"],
        forbid=o["forbid"] or [],
        resume=o["resume"] if o["backend"] == "local" else None,  # a Ray job resumes by backend
    )


def _render(res: Any, *, as_json: bool, top_k: int) -> None:
    if as_json:
        emit_json(res.to_json_doc())
    else:
        print_explanations(res.explanations, top_k, res.faithfulness)
        print_glossary(EXPLAIN_TERMS)
    report_written(res.report)


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
