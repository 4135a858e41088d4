"""``explainlm global importance | surrogate | sensitivity | layers``: what a model relies on across
a dataset. Options map onto :mod:`explainlm.services.behaviour` requests; results print as tables,
``--json`` prints one document, ``--output`` writes .json/.parquet/.html/.png/.svg files."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from explainlm.cli.common import (
    DEFAULT_MODEL,
    BootOpt,
    BudgetOpt,
    DeviceOpt,
    JsonOpt,
    LimitOpt,
    ModelOpt,
    TemplateOpt,
    emit_json,
    err_console,
)

app = typer.Typer(
    help="Global behaviour: dataset-level importance, surrogates, sensitivity, layer attribution.",
    no_args_is_help=True,
)

TextsArg = Annotated[list[str] | None, typer.Argument(help="Texts (instead of --dataset).")]
ImportanceRunOpt = Annotated[str | None, typer.Option(help="Reuse this importance run.")]
DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", "-d", help="Built-in dataset (sst2, …) or a file.")
]
SplitOpt = Annotated[str | None, typer.Option(help="Split of a built-in dataset.")]
TextColOpt = Annotated[str, typer.Option(help="Text column of a file.")]
LabelColOpt = Annotated[str, typer.Option(help="Gold-label column of a file (if present).")]
LabelsOpt = Annotated[
    str | None, typer.Option(help="Labels, comma-separated (zero-shot or black-box models).")
]
EndpointOpt = Annotated[
    list[str] | None,
    typer.Option("--endpoint", help="Black-box option KEY=VALUE (body, token, timeout_s, …)."),
]
MethodOpt = Annotated[
    str,
    typer.Option(help="Attribution method (occlusion is faithful on both built-in model kinds)."),
]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help="Method parameter KEY=VALUE.")]
TargetOpt = Annotated[str | None, typer.Option(help="Target: prob (default), logit:LABEL, …")]
OutputOpt = Annotated[
    list[str] | None,
    typer.Option("--output", "-o", help="Write .json, .parquet, .html, .png or .svg (repeatable)."),
]
ResumeOpt = Annotated[str | None, typer.Option(help="Resume an interrupted run by its id.")]
ChunkOpt = Annotated[int, typer.Option(help="Texts per stored chunk.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of bootstrap, splits and random orders.")]


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as JSON when they parse (numbers, lists, objects)."""
    from explainlm.errors import UserError

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{what} takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# The options every command shares, as its request fields (the rest are the command's own).
COMMON = (
    "model", "dataset", "texts", "split", "limit", "text_column", "label_column", "labels",
    "template", "endpoint", "device", "max_batch_tokens", "seed", "n_boot", "output",
)  # fmt: skip


def _fields(options: dict[str, Any], own: tuple[str, ...], **converted: Any) -> dict[str, Any]:
    """A command's request fields from its CLI options (its ``locals()``): the shared ones, its
    ``own`` ones as given, and ``converted`` ones (parsed from their strings here)."""
    from explainlm.cli.common import split_list

    o = {k: options.get(k) for k in COMMON}
    as_given = ("model", "dataset", "split", "limit", "text_column", "label_column", "device")
    return {
        **{k: o[k] for k in (*as_given, "max_batch_tokens", "seed", "n_boot")},
        "texts": o["texts"] or None,
        "labels": split_list(o["labels"]),
        "template": o["template"].replace("\\n", "\n") if o["template"] else None,
        "endpoint": _kv(o["endpoint"], "--endpoint"),
        "outputs": o["output"] or [],
        **{k: options[k] for k in own},
        **converted,
    }


def _run(cls: Any, fields: dict[str, Any]) -> Any:
    from explainlm.progress import TerminalProgress
    from explainlm.services import behaviour as svc
    from explainlm.services.base import LocalModels, ServiceContext, build_request
    from explainlm.store import open_store

    fields = {k: v for k, v in fields.items() if v is not None}
    req = build_request(cls, **fields)  # bad options fail here, before any model loads
    ctx = ServiceContext(
        store=open_store(),
        progress=TerminalProgress(),
        models=LocalModels(device=req.device),
        source="cli",
    )
    result = svc.run(req, ctx)
    for path in req.outputs:
        err_console.print(f"wrote {path}", markup=False, soft_wrap=True)
    return result


# ------------------------------------------------------------------------------- commands
def importance_cmd(
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = None,
    texts: TextsArg = None,
    method: MethodOpt = "occlusion",
    param: ParamOpt = None,
    target: TargetOpt = None,
    ngram_max: Annotated[int, typer.Option(help="Longest n-gram (1 = words only).")] = 1,
    min_count: Annotated[int, typer.Option(help="Minimum occurrences of a feature.")] = 5,
    min_texts: Annotated[int, typer.Option(help="Minimum texts containing a feature.")] = 2,
    group_by: Annotated[str, typer.Option(help="explained | gold | none.")] = "explained",
    rank: Annotated[str, typer.Option(help="mean | mean_abs | total | lower.")] = "mean",
    top: Annotated[int, typer.Option(help="Features shown per class.")] = 15,
    check_faithfulness: Annotated[
        int, typer.Option(help="Texts for the trust check (0: off).")
    ] = 50,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    text_column: TextColOpt = "text",
    label_column: LabelColOpt = "label",
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    endpoint: EndpointOpt = None,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    seed: SeedOpt = 0,
    n_boot: BootOpt = 1000,
    max_batch_tokens: BudgetOpt = 2048,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dataset-level importance of words and n-grams per class, with bootstrap CIs over texts.

    Examples:

        explainlm global importance -m models/minilm-sst2 -d sst2 --limit 200 -o imp.html

        explainlm global importance -m http://127.0.0.1:8000/api/predict --endpoint body='{"model":"m"}' -d reviews.tsv
    """
    from explainlm.cli.behaviour_tables import print_importance
    from explainlm.services.behaviour import ImportanceRequest

    options = dict(locals())
    own = ("method", "target", "ngram_max", "min_count", "min_texts", "group_by", "rank", "top")
    own += ("check_faithfulness", "chunk_size", "resume")
    fields = _fields(options, own, method_params=_kv(param, "--param"))
    imp = _run(ImportanceRequest, fields)
    if as_json:
        emit_json(imp.to_json_doc(k=top))
        return
    print_importance(imp, rank, top)


def surrogate_cmd(
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = None,
    texts: TextsArg = None,
    kinds: Annotated[str, typer.Option(help="tree, logistic (comma-separated).")] = "tree,logistic",
    features: Annotated[str, typer.Option(help="bow and/or top_words.")] = "bow",
    top_k: Annotated[int, typer.Option(help="Top attributed words (features=top_words).")] = 100,
    importance_run: ImportanceRunOpt = None,
    method: MethodOpt = "occlusion",
    param: ParamOpt = None,
    ngram_max: Annotated[int, typer.Option(help="Longest n-gram feature.")] = 1,
    min_df: Annotated[int, typer.Option(help="Minimum texts per feature.")] = 2,
    test_size: Annotated[float, typer.Option(help="Held-out share.")] = 0.3,
    tree_depth: Annotated[int, typer.Option(help="Depth of the reported tree.")] = 3,
    max_depth: Annotated[int, typer.Option(help="Deepest tree on the curve.")] = 8,
    max_nonzero: Annotated[int, typer.Option(help="Most words in the linear surrogate.")] = 50,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    text_column: TextColOpt = "text",
    label_column: LabelColOpt = "label",
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    endpoint: EndpointOpt = None,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    seed: SeedOpt = 0,
    n_boot: BootOpt = 1000,
    max_batch_tokens: BudgetOpt = 2048,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Surrogates trained to imitate the model: held-out fidelity, curve, rules and weights.

    Examples:

        explainlm global surrogate -m models/minilm-sst2 -d sst2 -o surrogates.html

        explainlm global surrogate -m smollm2-135m -d sst2 --limit 300 --features bow,top_words
    """
    from explainlm.cli.behaviour_tables import print_surrogates
    from explainlm.cli.common import split_list
    from explainlm.services.behaviour import SurrogateRequest

    options = dict(locals())
    own = ("top_k", "importance_run", "method", "ngram_max", "min_df", "test_size", "tree_depth")
    own += ("max_depth", "max_nonzero", "chunk_size", "resume")
    fields = _fields(
        options,
        own,
        kinds=split_list(kinds),
        features=split_list(features),
        method_params=_kv(param, "--param"),
    )
    res = _run(SurrogateRequest, fields)
    if as_json:
        emit_json(res.to_json_doc())
        return
    print_surrogates(res)


def sensitivity_cmd(
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = None,
    texts: TextsArg = None,
    method: MethodOpt = "occlusion",
    param: ParamOpt = None,
    importance_run: ImportanceRunOpt = None,
    x: Annotated[
        str, typer.Option(help="fraction (of the words) or count (of words).")
    ] = "fraction",
    grid: Annotated[str | None, typer.Option(help="Grid points, comma-separated.")] = None,
    n_random: Annotated[int, typer.Option(help="Random orders per text.")] = 5,
    replace: Annotated[str, typer.Option(help="remove | mask | pad.")] = "remove",
    split: SplitOpt = None,
    limit: LimitOpt = None,
    text_column: TextColOpt = "text",
    label_column: LabelColOpt = "label",
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    endpoint: EndpointOpt = None,
    chunk_size: ChunkOpt = 32,
    resume: ResumeOpt = None,
    seed: SeedOpt = 0,
    n_boot: BootOpt = 1000,
    max_batch_tokens: BudgetOpt = 2048,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How the prediction moves as words are removed: attribution order against random order.

    Example:

        explainlm global sensitivity -m models/minilm-sst2 -d sst2 --limit 300 -o sens.png
    """
    from explainlm.cli.behaviour_tables import print_sensitivity
    from explainlm.cli.common import split_list
    from explainlm.errors import UserError
    from explainlm.services.behaviour import SensitivityRequest

    options = dict(locals())
    points = None
    if grid:
        try:
            points = [float(v) for v in split_list(grid) or []]
        except ValueError:
            raise UserError(f"--grid takes numbers, got {grid!r}") from None
    own = ("method", "importance_run", "x", "n_random", "replace", "chunk_size", "resume")
    fields = _fields(options, own, method_params=_kv(param, "--param"), grid=points)
    res = _run(SensitivityRequest, fields)
    if as_json:
        emit_json(res.to_json_doc())
        return
    print_sensitivity(res)


def layers_cmd(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts (or --dataset).")] = None,
    model: ModelOpt = DEFAULT_MODEL,
    dataset: DatasetOpt = None,
    points: Annotated[str, typer.Option(help="Hook points (layers.*.resid_post, embed, …).")] = (
        "layers.*.resid_post"
    ),
    method: Annotated[
        str, typer.Option(help="grad_x_activation | grad_cam | integrated_gradients.")
    ] = ("grad_x_activation"),
    steps: Annotated[int, typer.Option(help="Integration points (integrated_gradients).")] = 32,
    baseline: Annotated[
        str, typer.Option(help="pad | mask | zero (integrated_gradients).")
    ] = "pad",
    target: TargetOpt = None,
    split: SplitOpt = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the first N texts (default 20 of a dataset).")
    ] = None,
    text_column: TextColOpt = "text",
    label_column: LabelColOpt = "label",
    labels: LabelsOpt = None,
    template: TemplateOpt = None,
    seed: SeedOpt = 0,
    max_batch_tokens: BudgetOpt = 2048,
    device: DeviceOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Layer attribution at named hook points: a layer × token map per text.

    Example:

        explainlm global layers "A gorgeous, witty film." -m models/minilm-sst2 -o layers.html
    """
    from explainlm.cli.behaviour_tables import print_layers
    from explainlm.cli.common import split_list
    from explainlm.services.behaviour import LayersRequest

    options = dict(locals())
    own = ("method", "steps", "baseline", "target")
    fields = _fields(options, own, points=split_list(points), n_boot=1)
    res = _run(LayersRequest, fields)
    if as_json:
        emit_json(res.to_json_doc())
        return
    print_layers(res)


app.command("importance")(importance_cmd)
app.command("surrogate")(surrogate_cmd)
app.command("sensitivity")(sensitivity_cmd)
app.command("layers")(layers_cmd)


def register(root: typer.Typer) -> None:
    """Add ``explainlm global …`` to the root app."""
    root.add_typer(app, name="global")
