"""``explainlm lens | patch | probe | heads | activations``: look inside the model.

Each command records a run in the store (results under ``items``), prints one JSON document with
``--json`` and writes a self-contained HTML heat map with ``--html``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from explainlm.cli.common import (
    DEFAULT_MODEL,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    cli_context,
    console,
    emit_json,
    err_console,
    report_written,
    status,
)
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.services.base import build_request
from explainlm.services.common import unescape

HtmlOpt = Annotated[str | None, typer.Option("--html", help="Write an HTML heat map here.")]
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="TSV/CSV/JSONL file.")]
TextCol = Annotated[str, typer.Option(help="Text column of --dataset.")]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N rows.")]
TemplateOpt = Annotated[str | None, typer.Option(help="Wrap each text: a template with {text}.")]
BudgetOpt = Annotated[int, typer.Option(help="Token budget per forward pass (rows × length).")]


def _run(request_name: str, device: str | None, as_json: bool, **fields: Any) -> Any:
    """Build the request, run it, say where the report went; print ``--json`` (returns None) or
    return the result for the command to render."""
    from explainlm.services import internals as service

    if fields.get("template"):
        fields["template"] = unescape(fields["template"])
    req = build_request(getattr(service, request_name), device=device, **fields)
    out = service.run(req, cli_context(device))
    report_written(out.report)
    if as_json:
        emit_json(out.to_json_doc())
        return None
    return out


def lens_cmd(
    prompt: Annotated[str, typer.Argument(help="The prompt (raw text, no chat markup).")],
    model: ModelOpt = DEFAULT_MODEL,
    top_k: Annotated[int, typer.Option(help="Top tokens per layer and position.")] = 5,
    target: Annotated[str | None, typer.Option(help="Token to track (e.g. ' Paris').")] = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Logit lens: what each layer would predict next, at every position.

    Examples:

        explainlm lens "The Eiffel Tower is located in the city of" --target " Paris"

        explainlm lens "1, 2, 3, 4," --top-k 3 --json
    """
    out = _run(
        "LensRequest",
        device,
        as_json,
        prompt=prompt,
        model=model,
        top_k=top_k,
        target=target,
        html=html,
    )
    if out is None:
        return
    res = out.result
    t = Table(title=f"logit lens · {model} · top-1 at the last position")
    t.add_column("layer")
    t.add_column("top tokens")
    if target:
        t.add_column(f"p({target!r}) / rank")
    for k, layer in enumerate(res.layers):
        top = ", ".join(
            f"{a!r} {p:.3f}"
            for a, p in zip(res.top_tokens[k][-1], res.top_probs[k][-1], strict=True)
        )
        row = [str(layer), top]
        if target:
            row.append(f"{res.target_probs[k][-1]:.4f} / {res.target_ranks[k][-1]}")
        t.add_row(*row)
    console.print(t)


def patch_cmd(
    clean: Annotated[str, typer.Option("--clean", help="The clean prompt.")],
    target: Annotated[str, typer.Option(help="Target next token (e.g. ' Paris').")],
    corrupt: Annotated[
        str | None, typer.Option(help="Corrupted prompt, same token length.")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Noise these words instead (ROME).")] = None,
    component: Annotated[str, typer.Option(help="resid | attn | mlp")] = "resid",
    metric: Annotated[str, typer.Option(help="prob | logit_diff")] = "prob",
    foil: Annotated[str | None, typer.Option(help="Foil token for logit_diff.")] = None,
    window: Annotated[int, typer.Option(help="Layers patched together around each layer.")] = 1,
    noise: Annotated[float, typer.Option(help="Noise scale in embedding stds.")] = 3.0,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
    positions: Annotated[
        str | None, typer.Option(help="Only these token positions, e.g. '0,1,-1' (long prompts).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    max_batch_tokens: BudgetOpt = DEFAULT_MAX_BATCH_TOKENS,
    device: DeviceOpt = None,
    figure: Annotated[str | None, typer.Option(help="Save the grid as PNG/SVG here.")] = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Activation patching / causal tracing: where the clean prediction can be restored.

    Examples:

        explainlm patch --clean "The Eiffel Tower is located in the city of" --subject "The Eiffel Tower" --target " Paris"

        explainlm patch --clean "The Eiffel Tower is in" --corrupt "The Colosseum is in" --target " Paris" --component mlp --json
    """
    with status("patching …"):
        out = _run(
            "PatchRequest",
            device,
            as_json,
            clean=clean,
            target=target,
            corrupt=corrupt,
            subject=subject,
            component=component,
            metric=metric,
            foil=foil,
            window=window,
            noise=noise,
            seed=seed,
            positions=positions,
            model=model,
            max_batch_tokens=max_batch_tokens,
            figure=figure,
            html=html,
        )
    if out is None:
        return
    res = out.result
    layer, pos, best = res.best()
    console.print(
        f"{res.metric}: clean {res.clean:.4f}, corrupted {res.corrupt:.4f} ({res.corruption})"
    )
    t = Table(title=f"restored fraction ({component}), layers × positions")
    t.add_column("layer")
    for j in res.positions:
        t.add_column(repr(res.tokens[j]) + ("*" if j in res.corrupted_positions else ""))
    for i, row in zip(res.layers, res.grid, strict=True):
        t.add_row(str(i), *[f"{v:.2f}" for v in row])
    console.print(t)
    console.print(f"largest: layer {layer}, token {pos} {res.tokens[pos]!r}: {best:.3f}")
    for n in out.notes:
        err_console.print(f"note: {n}", markup=False)


def probe_cmd(
    dataset: DatasetOpt,
    label_column: Annotated[str, typer.Option(help="Label column of --dataset.")],
    text_column: TextCol = "text",
    model: ModelOpt = DEFAULT_MODEL,
    limit: LimitOpt = None,
    pool: Annotated[
        str | None,
        typer.Option(help="mean | last | first (default: last for LMs, mean for encoders)."),
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of folds, control labels, bootstrap.")] = 0,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = 4096,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Linear probes per layer, with CIs and a shuffled-label control task (selectivity).

    Examples:

        explainlm probe --dataset ../shared/data/sst2/train.tsv --text-column sentence --label-column label --limit 1000

        explainlm probe -d data.tsv --label-column label --model minilm-l6 --pool mean --json
    """
    out = _run(
        "ProbeRequest",
        device,
        as_json,
        dataset=dataset,
        label_column=label_column,
        text_column=text_column,
        model=model,
        limit=limit,
        pool=pool,
        folds=folds,
        seed=seed,
        template=template,
        max_batch_tokens=max_batch_tokens,
        html=html,
    )
    if out is None:
        return
    res = out.result
    t = Table(title=f"probes · {model} · n={res.n}, {folds}-fold CV, majority {res.majority:.3f}")
    for c in ("point", "accuracy", "95% CI", "control", "selectivity"):
        t.add_column(c)
    for r in res.rows():
        t.add_row(
            r["layer"],
            f"{r['accuracy']:.3f}",
            f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]",
            f"{r['control']:.3f}",
            f"{r['selectivity']:+.3f}",
        )
    console.print(t)


def heads_cmd(
    dataset: DatasetOpt,
    text_column: TextCol = "text",
    label_column: Annotated[str | None, typer.Option(help="Gold labels (classifiers).")] = None,
    model: ModelOpt = DEFAULT_MODEL,
    limit: LimitOpt = 50,
    ablation: Annotated[str, typer.Option(help="zero | mean")] = "zero",
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = 2048,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Attention-head importance: the metric change when each head is ablated.

    Examples:

        explainlm heads --dataset ../shared/data/sst2/dev.tsv --text-column sentence --limit 20

        explainlm heads -d dev.tsv --text-column sentence --label-column label --model models/minilm-sst2 --ablation mean --html heads.html
    """
    out = _run(
        "HeadsRequest",
        device,
        as_json,
        dataset=dataset,
        text_column=text_column,
        label_column=label_column,
        model=model,
        limit=limit,
        ablation=ablation,
        template=template,
        max_batch_tokens=max_batch_tokens,
        html=html,
    )
    if out is None:
        return
    res = out.result
    console.print(f"{res.metric} intact: {res.base:.4f} over {res.n} texts ({ablation} ablation)")
    t = Table(title="heads with the largest effect")
    for c in ("layer", "head", "change"):
        t.add_column(c)
    for i, h, v in res.ranked(10):
        t.add_row(str(i), str(h), f"{v:+.4f}")
    console.print(t)


def activations_cmd(
    dataset: DatasetOpt,
    export: Annotated[tuple[str, str], typer.Option(help="FORMAT DIR; FORMAT is tensorboard.")],
    text_column: TextCol = "text",
    label_column: Annotated[str | None, typer.Option(help="Labels for the metadata.")] = None,
    point: Annotated[
        list[str] | None, typer.Option("--point", help="Hook point (repeatable; * = every layer).")
    ] = None,
    pool: Annotated[str | None, typer.Option(help="mean | last | first")] = None,
    probe: Annotated[
        bool, typer.Option("--probe", help="Also write probe curves (needs labels).")
    ] = False,
    model: ModelOpt = DEFAULT_MODEL,
    limit: LimitOpt = None,
    template: TemplateOpt = None,
    max_batch_tokens: BudgetOpt = 4096,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Export pooled activations per text to the TensorBoard embedding projector.

    Examples:

        explainlm activations --dataset ../shared/data/sst2/dev.tsv --text-column sentence --label-column label --limit 500 --export tensorboard runs/sst2

        explainlm activations -d dev.tsv --text-column sentence --point layers.5.resid_post --export tensorboard tb --probe --label-column label
    """
    out = _run(
        "ActivationsRequest",
        device,
        as_json,
        dataset=dataset,
        export_format=export[0],
        export_dir=export[1],
        text_column=text_column,
        label_column=label_column,
        points=point or ["embed", "layers.*.resid_post"],
        pool=pool,
        probe=probe,
        model=model,
        limit=limit,
        template=template,
        max_batch_tokens=max_batch_tokens,
        html=html,
    )
    if out is not None:
        doc = out.doc
        console.print(
            f"wrote {len(doc['points'])} embeddings of {doc['n']} texts to {doc['logdir']}"
        )
        console.print(f"browse with: tensorboard --logdir {doc['logdir']}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``lens``, ``patch``, ``probe``, ``heads`` and ``activations`` to the app."""
    app.command("lens")(lens_cmd)
    app.command("patch")(patch_cmd)
    app.command("probe")(probe_cmd)
    app.command("heads")(heads_cmd)
    app.command("activations")(activations_cmd)
