"""``explainlm generate``: generate (or teacher-force) a continuation and attribute every token."""

from __future__ import annotations

from typing import Annotated

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
    load_task,
)
from explainlm.cli.explain import parse_params
from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.store import open_store

DEFAULT_METHODS = ["occlusion"]


def generate_cmd(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    model: ModelOpt = DEFAULT_MODEL,
    method: Annotated[
        list[str] | None, typer.Option("--method", help="Method name (repeatable).")
    ] = None,
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
    granularity: Annotated[str, typer.Option(help="word | token")] = "word",
    chat: Annotated[
        bool, typer.Option("--chat/--no-chat", help="Wrap the prompt in the chat template.")
    ] = False,
    sample: Annotated[
        bool, typer.Option("--sample", help="Seeded sampling instead of greedy decoding.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="METHOD.NAME=VALUE (repeatable).")
    ] = None,
    max_batch_tokens: Annotated[
        int, typer.Option(help="Token budget per pass.")
    ] = DEFAULT_MAX_BATCH_TOKENS,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: Annotated[
        str | None, typer.Option("--html", help="Write a self-contained HTML report.")
    ] = None,
) -> None:
    """Attribute every generated token to the prompt and to earlier generated tokens.

    Examples:

        explainlm generate "The capital of France is" --max-new-tokens 3 --method occlusion --method integrated_gradients

        explainlm generate "Review: a gorgeous film\\nSentiment:" --target-text " positive" --contrast " negative" --method occlusion --json

        explainlm generate "Why is the sky blue?" --chat --max-new-tokens 20 --html out.html
    """
    from explainlm.generation import explain_generation
    from explainlm.methods import get_method

    if not prompt.strip():
        raise UserError("the prompt is empty")
    methods = method or DEFAULT_METHODS
    params = parse_params(param)
    for m in methods:
        get_method(m, **params.get(m, {}))
    gen = load_task(model, "generator", chat=chat, device=device)
    run_params = {
        "methods": methods,
        "method_params": params,
        "max_new_tokens": max_new_tokens,
        "target_text": target_text,
        "target": target,
        "contrast": contrast,
        "granularity": granularity,
        "chat": chat,
        "sample": sample,
        "seed": seed,
    }
    store = open_store()
    with store.recorded_run("generate", model=model, params=run_params) as run:
        res = explain_generation(
            [prompt.replace("\\n", "\n")],
            gen,
            methods,
            max_new_tokens=max_new_tokens,
            target_texts=[target_text.replace("\\n", "\n")] if target_text else None,
            target=target,
            foil=contrast,
            granularity=granularity,
            do_sample=sample,
            seed=seed,
            method_params=params,
            max_batch_tokens=max_batch_tokens,
            progress=True,
        )
        res.run_id = run.run_id
        store.put_items(
            run.run_id, "generation", {f"{k:04d}": a.to_dict() for k, a in enumerate(res)}
        )
        run.summary = {"continuation": res[0].continuation, "methods": methods}
        if html:
            from explainlm.report.html import write_path
            from explainlm.report.matrix import generation_report

            path = write_path(html, generation_report(res, {"model": model, "run": run.run_id}))
            run.summary["report"] = str(path)
    if as_json:
        emit_json(
            {
                "run_id": run.run_id,
                "model": model,
                "prompt": prompt,
                "attributions": [a.to_json_doc() for a in res],
            }
        )
    else:
        from explainlm.report.matrix import summary

        console.print(Text(f"{prompt}", style="bold") + Text(res[0].continuation, style="magenta"))
        for a in res:
            console.print(Text(f"\n{a.method} · target {a.target}", style="cyan"))
            for i, unit in enumerate(a.target_units):
                top = ", ".join(f"{u.strip()} {v:+.2f}" for u, v in a.top_sources(i))
                console.print(Text(f"  {unit!r:>16} (log p {a.target_logprobs[i]:+.2f}) ← {top}"))
            console.print(Text(f"  {summary(a)}", style="italic"))
    if html:
        err_console.print(
            f"report written to {run.summary['report']}", soft_wrap=True, markup=False
        )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
