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
    console,
    emit_json,
    err_console,
    status,
)
from explainlm.errors import UserError
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.store import open_store

HtmlOpt = Annotated[str | None, typer.Option("--html", help="Write an HTML heat map here.")]
DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="TSV/CSV/JSONL file.")]
TextCol = Annotated[str, typer.Option(help="Text column of --dataset.")]
LimitOpt = Annotated[int | None, typer.Option(help="Only the first N rows.")]
TemplateOpt = Annotated[str | None, typer.Option(help="Wrap each text: a template with {text}.")]
BudgetOpt = Annotated[int, typer.Option(help="Token budget per forward pass (rows × length).")]


def _load(model: str, device: str | None) -> Any:
    from explainlm.models import ModelWrapper

    with status(f"loading {model} …"):
        return ModelWrapper.load(model, device=device)


def _table(path: str, text_column: str, label_column: str | None, limit: int | None) -> Any:
    from explainlm.datasets import read_table

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    return read_table(path, text_column=text_column, label_column=label_column, limit=limit)


def _template(t: str | None) -> str | None:
    return t.replace("\\n", "\n") if t else None


def _report(html: str | None, document: str, run: Any) -> None:
    if not html:
        return
    from explainlm.report.html import write_path

    path = write_path(html, document)
    run.summary["report"] = str(path)
    err_console.print(f"report written to {path}", soft_wrap=True, markup=False)


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
    from explainlm.internals import lens
    from explainlm.internals.report import lens_html

    w = _load(model, device)
    store = open_store()
    params = {"prompt": prompt, "top_k": top_k, "target": target}
    with store.recorded_run("lens", model=model, params=params) as run:
        res = lens(w, prompt, top_k=top_k, target=target)
        doc = res.to_json()
        store.put_items(run.run_id, "lens", {"result": doc})
        run.summary = {"layers": len(res.layers), "tokens": len(res.tokens)}
        _report(html, lens_html(res, {"model": model, "run": run.run_id}), run)
    if as_json:
        emit_json(doc)
        return
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
    from explainlm.internals import trace
    from explainlm.internals.report import trace_figure, trace_html

    if window < 1:
        raise UserError(f"--window must be at least 1, got {window}")
    cols = None
    if positions:
        try:
            cols = [int(x) for x in positions.split(",") if x.strip()]
        except ValueError:
            raise UserError(
                f"--positions takes comma-separated integers, got {positions!r}"
            ) from None
    w = _load(model, device)
    store = open_store()
    params = {"clean": clean, "corrupt": corrupt, "subject": subject, "target": target}
    params |= {"component": component, "metric": metric, "foil": foil, "window": window}
    with store.recorded_run("patch", model=model, params=params) as run:
        with status("patching …"):
            res = trace(
                w,
                clean,
                target=target,
                corrupt=corrupt,
                subject=subject,
                component=component,
                metric=metric,
                foil=foil,
                noise=noise,
                window=window,
                seed=seed,
                max_batch_tokens=max_batch_tokens,
                positions=cols,
            )
        doc = res.to_json()
        store.put_items(run.run_id, "patch", {"result": doc})
        layer, pos, best = res.best()
        run.summary = {"clean": res.clean, "corrupt": res.corrupt, "best": [layer, pos, best]}
        if figure:
            run.summary["figure"] = str(trace_figure(res, figure))
        _report(html, trace_html(res, {"model": model, "run": run.run_id}), run)
    if as_json:
        emit_json({"run_id": run.run_id, "model": model, **doc})
        return
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
    for n in res.notes:
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
    from explainlm.internals import probe_model
    from explainlm.internals.report import probe_html

    table = _table(dataset, text_column, label_column, limit)
    w = _load(model, device)
    store = open_store()
    params = {"dataset": dataset, "label_column": label_column, "n": len(table), "pool": pool}
    params |= {"folds": folds, "seed": seed, "template": template}
    with store.recorded_run("probe", model=model, params=params) as run:
        res, _ = probe_model(
            w,
            table.texts,
            table.labels,
            pool=pool,
            template=_template(template),
            max_batch_tokens=max_batch_tokens,
            progress=True,
            folds=folds,
            seed=seed,
        )
        store.put_items(run.run_id, "probe", {r["layer"]: r for r in res.rows()})
        best = max(range(len(res.layers)), key=lambda k: res.accuracy[k])
        run.summary = {"best_layer": res.layers[best], "best_accuracy": res.accuracy[best]}
        _report(html, probe_html(res, {"model": model, "run": run.run_id}), run)
    if as_json:
        emit_json({"run_id": run.run_id, "model": model, **res.to_json()})
        return
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
    from explainlm.internals import head_importance
    from explainlm.internals.report import heads_html

    table = _table(dataset, text_column, label_column, limit)
    w = _load(model, device)
    store = open_store()
    params = {"dataset": dataset, "n": len(table), "ablation": ablation, "labels": label_column}
    with store.recorded_run("heads", model=model, params=params) as run:
        res = head_importance(
            w,
            table.texts,
            labels=table.labels,
            ablation=ablation,
            template=_template(template),
            max_batch_tokens=max_batch_tokens,
            progress=True,
        )
        store.put_items(run.run_id, "heads", {"result": res.to_json()})
        run.summary = {"metric": res.metric, "base": res.base, "top": res.ranked(5)}
        _report(html, heads_html(res, {"model": model, "run": run.run_id}), run)
    if as_json:
        emit_json({"run_id": run.run_id, "model": model, **res.to_json()})
        return
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
    from explainlm.internals import capture, export_tensorboard
    from explainlm.internals import probe as run_probe

    fmt, out = export
    if fmt != "tensorboard":
        raise UserError(f"unknown export format {fmt!r}; use tensorboard")
    if probe and not label_column:
        raise UserError("--probe needs --label-column")
    table = _table(dataset, text_column, label_column, limit)
    w = _load(model, device)
    pool = pool or ("last" if w.is_decoder else "mean")
    points = point or ["embed", "layers.*.resid_post"]
    store = open_store()
    params = {"dataset": dataset, "n": len(table), "points": points, "pool": pool, "out": out}
    with store.recorded_run("activations", model=model, params=params) as run:
        cache = capture(
            w,
            table.texts,
            points,
            template=_template(template),
            pool=pool,
            max_batch_tokens=max_batch_tokens,
            progress=True,
        )
        pooled = {p: cache.pooled(p, pool).numpy() for p in cache.points}
        res = None
        if probe:
            res = run_probe(list(pooled.values()), table.labels, layer_names=list(pooled))
        path = export_tensorboard(out, pooled, labels=table.labels, texts=table.texts, probe=res)
        doc = {"logdir": str(path), "points": cache.points, "n": len(table), "pool": pool}
        if res is not None:
            doc["probe"] = res.to_json()
        store.put_items(run.run_id, "activations", {"export": doc})
        run.summary = {"logdir": str(path), "points": len(cache.points)}
        if html:
            from explainlm.internals.report import activations_html

            meta = {"model": model, "run": run.run_id}
            _report(html, activations_html(str(path), pooled, len(table), pool, res, meta), run)
    if as_json:
        emit_json({"run_id": run.run_id, "model": model, **doc})
    else:
        console.print(f"wrote {len(cache.points)} embeddings of {len(table)} texts to {path}")
        console.print(f"browse with: tensorboard --logdir {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``lens``, ``patch``, ``probe``, ``heads`` and ``activations`` to the app."""
    app.command("lens")(lens_cmd)
    app.command("patch")(patch_cmd)
    app.command("probe")(probe_cmd)
    app.command("heads")(heads_cmd)
    app.command("activations")(activations_cmd)
