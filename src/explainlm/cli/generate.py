"""``explainlm generate``: generate (or teacher-force) a continuation and attribute every token."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    GranularityOpt,
    HtmlOpt,
    JsonOpt,
    MeasuredBudgetOpt,
    MethodOpt,
    ModelOpt,
    ParamOpt,
    PrecisionOpt,
    cli_context,
    console,
    emit_json,
    report_written,
)
from explainlm.cli.explain import ForbidOpt, NoCheckOpt, check_line, print_glossary
from explainlm.services.base import build_request
from explainlm.services.common import unescape


def generate_cmd(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    model: ModelOpt = DEFAULT_MODEL,
    method: MethodOpt = None,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 10,
    target_text: Annotated[
        str | None,
        typer.Option(help="Explain this continuation (teacher forcing) instead of generating."),
    ] = None,
    target: Annotated[
        str, typer.Option(help="token_logprob | token_prob | sequence_logprob")
    ] = "token_logprob",
    contrast: Annotated[
        str | None, typer.Option(help="Foil text: explain log p(token) − log p(foil token).")
    ] = None,
    granularity: GranularityOpt = "word",
    chat: Annotated[
        bool, typer.Option("--chat/--no-chat", help="Wrap the prompt in the chat template.")
    ] = False,
    sample: Annotated[
        bool, typer.Option("--sample", help="Seeded sampling instead of greedy decoding.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    param: ParamOpt = None,
    max_batch_tokens: MeasuredBudgetOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    no_check: NoCheckOpt = False,
    forbid: ForbidOpt = None,
) -> None:
    """Attribute every generated token to the prompt and to earlier generated tokens.

    Examples:

        explainlm generate "The capital of France is" --max-new-tokens 3 --method occlusion --method integrated_gradients

        explainlm generate "Review: a gorgeous film\\nSentiment:" --target-text " positive" --contrast " negative" --method occlusion --json

        explainlm generate "Why is the sky blue?" --chat --max-new-tokens 20 --html out.html
    """
    from explainlm.services import generate as service

    req = build_request(
        service.GenerateRequest,
        prompt=unescape(prompt),
        model=model,
        methods=method or service.DEFAULT_METHODS,
        max_new_tokens=max_new_tokens,
        target_text=unescape(target_text),
        target=target,
        contrast=contrast,
        granularity=granularity,
        chat=chat,
        sample=sample,
        seed=seed,
        params=param or [],
        max_batch_tokens=max_batch_tokens,
        device=device,
        precision=precision,
        html=html,
        check=not no_check,
        forbid=forbid or [],
    )
    res = service.run(req, cli_context(device))
    if as_json:
        emit_json(res.to_json_doc())
    else:
        print_generation(res)
    report_written(res.report)


def print_generation(res: Any) -> None:
    from explainlm.report.matrix import method_name, summary

    console.print(Text(res.prompt, style="bold") + Text(res.continuation, style="magenta"))
    for a in res.attributions:
        console.print(Text(f"\n{method_name(a)} · target {a.target}", style="cyan"))
        console.print(check_line(a))
        for i, unit in enumerate(a.target_units):
            top = ", ".join(f"{u.strip()} {v:+.2f}" for u, v in a.top_sources(i))
            console.print(Text(f"  {unit!r:>16} (log p {a.target_logprobs[i]:+.2f}) ← {top}"))
        console.print(Text(f"  {summary(a)}", style="italic"))
        if a.auto:
            console.print(Text(f"  {a.auto['reason']}", style="dim"))
    terms = (res.attributions[0].target if len(res.attributions) else "token_logprob", "log p")
    print_glossary((*terms, "comprehensiveness", "sufficiency", "random"), terms[0])


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
