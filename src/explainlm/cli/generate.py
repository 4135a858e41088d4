"""``explainlm generate``: generate (or teacher-force) a continuation and attribute every token,
for one prompt or a file of prompts (``--input``; on a Ray cluster with ``--backend ray``)."""

from __future__ import annotations

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
    ResumeJobOpt,
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
    LimitOpt,
    MeasuredBudgetOpt,
    MethodOpt,
    ModelOpt,
    ParamOpt,
    PrecisionOpt,
    TextColumnOpt,
    cli_context,
    console,
    emit_json,
    report_written,
)
from explainlm.cli.explain import ForbidOpt, NoCheckOpt, check_line, print_glossary
from explainlm.services.base import build_request
from explainlm.services.common import unescape


def generate_cmd(
    prompt: Annotated[str | None, typer.Argument(help="The prompt (or --input FILE).")] = None,
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
    input_file: InputOpt = None,
    text_column: TextColumnOpt = "text",
    limit: LimitOpt = None,
    encoding: EncodingOpt = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Prompts per generation call (and Ray shard).")
    ] = 16,
    backend: BackendOpt = "local",
    address: AddressOpt = None,
    actors: ActorsOpt = None,
    gpus_per_actor: GpusOpt = None,
    cpus_per_actor: CpusOpt = 1.0,
    results_dir: ResultsDirOpt = None,
    resume: ResumeJobOpt = None,
) -> None:
    """Attribute every generated token to the prompt and to earlier generated tokens.

    Examples:

        explainlm generate "The capital of France is" --max-new-tokens 3 --method occlusion --method integrated_gradients

        explainlm generate "Review: a gorgeous film\\nSentiment:" --target-text " positive" --contrast " negative" --method occlusion --json

        explainlm generate "Why is the sky blue?" --chat --max-new-tokens 20 --html out.html

        explainlm generate --input prompts.jsonl --text-column prompt --method occlusion --backend ray --actors 4
    """
    opts = backend_options(
        backend, address, actors, gpus_per_actor, cpus_per_actor, results_dir, resume
    )
    req = _request(locals())
    run_command(req, cli_context(device), opts, as_json=as_json, render=partial(_render, as_json))


def _request(o: dict[str, Any]) -> Any:
    """The generate request from the command's options (``locals()`` of :func:`generate_cmd`)."""
    from explainlm.services import generate as service

    same = ("model", "text_column", "limit", "encoding", "chunk_size", "max_new_tokens", "target",
            "contrast", "granularity", "chat", "sample", "seed", "max_batch_tokens", "device",
            "precision", "html")  # fmt: skip
    return build_request(
        service.GenerateRequest,
        **{k: o[k] for k in same},
        prompt=unescape(o["prompt"]),
        input=o["input_file"],
        methods=o["method"] or service.DEFAULT_METHODS,
        target_text=unescape(o["target_text"]),
        params=o["param"] or [],
        check=not o["no_check"],
        forbid=o["forbid"] or [],
    )


def _render(as_json: bool, res: Any) -> None:
    if as_json:
        emit_json(res.to_json_doc())
    else:
        print_generation(res)
    report_written(res.report)


def print_generation(res: Any) -> None:
    from explainlm.report.matrix import method_name, summary

    last = None
    for a in res.attributions:
        if (a.prompt, a.continuation) != last:  # each prompt, then its methods' attributions
            last = (a.prompt, a.continuation)
            console.print(Text(a.prompt, style="bold") + Text(a.continuation, style="magenta"))
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
