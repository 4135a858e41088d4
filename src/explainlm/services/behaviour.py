"""The ``global`` job kind: dataset-level importance, surrogates, sensitivity curves, layer attribution.

Each analysis has its request (all options validated before any model loads) and a ``run_*``
function; :func:`run` dispatches on the request type. Dataset jobs work in chunks: each finished
chunk's per-text results are written to the run store (``items`` of kind ``global-explanations``,
``global-predictions`` or ``global-sensitivity``, key = the text's position), so ``resume=RUN_ID``
continues an interrupted run without recomputing finished texts. After the first chunk the progress
gets an estimate of the remaining time, measured on that chunk.

The model is a name, a directory or a hub id (``ctx.models``), or a black box: an ``http(s)://``
endpoint, a pickled scikit-learn pipeline (``.joblib``/``.pkl``) or ``module:function`` (see
:mod:`explainlm.models.blackbox`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from explainlm.errors import DataFormatError, UserError
from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.store import RunContext

EXPLANATIONS, PREDICTIONS, SENSITIVITY = (
    "global-explanations",
    "global-predictions",
    "global-sensitivity",
)
OUTPUT_SUFFIXES = (".json", ".parquet", ".html", ".htm", ".png", ".svg")
PERTURBATION = {"occlusion", "lime", "kernel_shap"}


class GlobalRequest(ServiceRequest):
    """What every global job reads: the model and the texts (a dataset, a file, or given texts)."""

    model: str = "smollm2-135m"
    task: Literal["sequence_classifier", "zero_shot"] | None = None
    labels: list[str] | None = None
    template: str | None = None
    calibrate: bool | None = None
    chat: bool | None = None
    endpoint: dict[str, Any] = Field(default_factory=dict, description="Black-box options.")
    dataset: str | None = Field(None, description="Built-in dataset name or a TSV/CSV/JSONL file.")
    split: str | None = None
    data_dir: str | None = None
    text_column: str = "text"
    label_column: str | None = "label"
    texts: list[str] | None = None
    gold: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    device: str | None = None
    max_batch_tokens: int = Field(2048, ge=16)
    chunk_size: int = Field(32, ge=1)
    resume: str | None = None
    seed: int = 0
    n_boot: int = Field(1000, ge=1)
    outputs: list[str] = Field(default_factory=list)
    # options that decide what a stored item holds: a resumed run must agree on them
    resume_keys: ClassVar[tuple[str, ...]] = ("model", "dataset", "split", "limit", "texts")

    @model_validator(mode="after")
    def _one_source(self) -> GlobalRequest:
        if (self.dataset is None) == (self.texts is None):
            raise ValueError("give either a dataset or texts")
        if self.texts is not None and not all(t.strip() for t in self.texts):
            raise ValueError("texts must not be empty")
        if self.gold is not None and (self.texts is None or len(self.gold) != len(self.texts)):
            raise ValueError("gold needs one label per text")
        for out in self.outputs:
            if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
                raise ValueError(f"output {out!r}: use .json, .parquet, .html, .png or .svg")
        return self


class _Attributing(GlobalRequest):
    method: str = "occlusion"
    method_params: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None
    resume_keys: ClassVar[tuple[str, ...]] = (
        *GlobalRequest.resume_keys,
        "method",
        "method_params",
        "target",
    )

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from explainlm.methods import METHODS

        if v not in METHODS:
            raise ValueError(f"unknown method {v!r}; known: {', '.join(METHODS)}")
        return v


class ImportanceRequest(_Attributing):
    command: ClassVar[str] = "global-importance"
    ngram_max: int = Field(1, ge=1, le=5)
    min_count: int = Field(5, ge=1)
    min_texts: int = Field(2, ge=1)
    group_by: Literal["explained", "gold", "none"] = "explained"
    rank: Literal["mean", "mean_abs", "total", "lower"] = "mean"
    top: int = Field(20, ge=1)
    check_faithfulness: int = Field(50, ge=0, description="Texts for the faithfulness check.")


class SurrogateRequest(_Attributing):
    command: ClassVar[str] = "global-surrogate"
    kinds: list[Literal["tree", "logistic"]] = Field(default_factory=lambda: ["tree", "logistic"])
    features: list[Literal["bow", "top_words"]] = Field(default_factory=lambda: ["bow"])
    top_k: int = Field(100, ge=1, description="Top attributed words used as features.")
    importance_run: str | None = None
    ngram_max: int = Field(1, ge=1, le=3)
    min_df: int = Field(2, ge=1)
    test_size: float = Field(0.3, gt=0, lt=1)
    tree_depth: int = Field(3, ge=1)
    max_depth: int = Field(8, ge=1)
    max_nonzero: int = Field(50, ge=1)


class SensitivityRequest(_Attributing):
    command: ClassVar[str] = "global-sensitivity"
    importance_run: str | None = None
    x: Literal["fraction", "count"] = "fraction"
    grid: list[float] | None = None
    n_random: int = Field(5, ge=1)
    replace: Literal["remove", "mask", "pad"] = "remove"
    resume_keys: ClassVar[tuple[str, ...]] = (
        *_Attributing.resume_keys,
        "x",
        "grid",
        "n_random",
        "replace",
        "seed",
    )


class LayersRequest(GlobalRequest):
    command: ClassVar[str] = "global-layers"
    points: list[str] = Field(default_factory=lambda: ["layers.*.resid_post"])
    method: Literal["grad_x_activation", "grad_cam", "integrated_gradients"] = "grad_x_activation"
    steps: int = Field(32, ge=1)
    baseline: Literal["pad", "mask", "zero"] = "pad"
    target: str | None = None
    limit: int | None = Field(None, ge=1, description="Default: 20 texts of a dataset.")


# ------------------------------------------------------------------------------- helpers
def load_texts(req: GlobalRequest) -> tuple[list[str], list[str] | None, str]:
    """The texts, their gold labels (or None) and a name for the data."""
    if req.texts is not None:
        return (
            list(req.texts[: req.limit]),
            (list(req.gold[: req.limit]) if req.gold else None),
            "texts",
        )
    from explainlm.datasets import DATASETS, load_dataset, read_table

    name = str(req.dataset)
    if name in DATASETS:
        ex = load_dataset(name, split=req.split, data_dir=req.data_dir, limit=req.limit)
        return (
            [e.text for e in ex],
            [e.label for e in ex],
            f"{name}:{req.split or DATASETS[name]['split']}",
        )
    try:
        t = read_table(
            name, text_column=req.text_column, label_column=req.label_column, limit=req.limit
        )
    except DataFormatError as e:
        if not req.label_column or f"no column {req.label_column!r}" not in str(e):
            raise
        t = read_table(name, text_column=req.text_column, limit=req.limit)
    return t.texts, t.labels, name


def load_classifier(ctx: ServiceContext, req: GlobalRequest) -> Any:
    """The model as a classifier: a black box, or a model from ``ctx.models``."""
    from explainlm.models import Classifier
    from explainlm.models.blackbox import is_blackbox_spec, load_blackbox

    if is_blackbox_spec(req.model):
        clf = load_blackbox(req.model, req.labels, **req.endpoint)
    else:
        opts = {
            "labels": req.labels,
            "template": req.template,
            "calibrate": req.calibrate,
            "chat": req.chat,
        }
        clf = ctx.models.task(req.model, req.task, **opts)
    if not isinstance(clf, Classifier):
        raise UserError(f"{req.model} is a {getattr(clf, 'task', 'model')}, not a classifier")
    return clf


@contextmanager
def recorded(ctx: ServiceContext, req: GlobalRequest, **extra: Any) -> Iterator[RunContext]:
    """A new recorded run, or the run named by ``req.resume`` reopened (its options must agree)."""
    if not req.resume:
        with ctx.recorded_run(req, model=req.model, **extra) as run:
            yield run
        return
    store = ctx.store
    if store is None:
        raise UserError("resuming needs the run store")
    rec = store.get_run(req.resume)
    if rec.command != req.command:
        raise UserError(f"run {rec.run_id} is a {rec.command} run, not {req.command}")
    spec = req.spec()
    for key in req.resume_keys:
        if rec.params.get(key) != spec.get(key):
            raise UserError(
                f"cannot resume {rec.run_id}: its {key} was {rec.params.get(key)!r}, now {spec.get(key)!r}"
            )
    store.reopen_run(rec.run_id)
    run = RunContext(store, rec.run_id, dict(rec.summary or {}))
    try:
        yield run
    except KeyboardInterrupt:
        store.finish_run(run.run_id, status="interrupted", summary=run.summary, error="interrupted")
        raise
    except BaseException as e:
        store.finish_run(
            run.run_id, status="failed", summary=run.summary, error=f"{type(e).__name__}: {e}"
        )
        raise
    store.finish_run(run.run_id, summary=run.summary)


def chunked(
    ctx: ServiceContext,
    run: RunContext,
    kind: str,
    n: int,
    chunk_size: int,
    compute: Callable[[list[int]], list[Any]],
    stage: str,
    cost: Callable[[int], float] = lambda i: 1.0,
) -> list[Any]:
    """``compute`` over ``range(n)`` in chunks, each stored before the next; stored ones are reused.

    The first chunk is timed, and the stage starts with an estimate for the rest (by ``cost``).
    """
    keys = [f"{i:06d}" for i in range(n)]
    done: dict[str, Any] = run.store.get_items(run.run_id, kind) if run.store else {}
    out: list[Any] = [done.get(k) for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in done]
    progress = ctx.progress
    first, rest = todo[: min(chunk_size, 4)], todo[min(chunk_size, 4) :]
    started = False
    for part in [first] + [rest[s : s + chunk_size] for s in range(0, len(rest), chunk_size)]:
        if not part:
            continue
        if not started and part is first:
            progress.start(f"{stage} (timing the first {len(part)})", None)
        tic = time.perf_counter()
        results = compute(part)
        if run.store is not None:
            run.store.put_items(
                run.run_id, kind, {keys[i]: r for i, r in zip(part, results, strict=True)}
            )
        for i, r in zip(part, results, strict=True):
            out[i] = r
        if not started:
            per = (time.perf_counter() - tic) / max(sum(cost(i) for i in part), 1e-9)
            progress.start(stage, n, estimate_s=per * sum(cost(i) for i in rest))
            progress.advance(n - len(rest))
            started = True
        else:
            progress.advance(len(part))
    if not started:
        progress.start(stage, n)
        progress.advance(n)
    progress.close()
    return out


def write_outputs(result: Any, outputs: Sequence[str], run: RunContext) -> list[str]:
    files = [str(result.save(p)) for p in outputs]
    if files:
        run.summary["files"] = files
    return files


# ----------------------------------------------------------------------- attributions
def explanation_records(
    ctx: ServiceContext,
    run: RunContext,
    clf: Any,
    req: _Attributing,
    texts: Sequence[str],
    gold: Sequence[str] | None,
    only: Sequence[int] | None = None,
) -> list[Any]:
    """Word attributions of every text (or of ``only`` these), stored per chunk; TextRecords."""
    from explainlm.attribution import explain
    from explainlm.behaviour.importance import TextRecord
    from explainlm.behaviour.trust import method_cost
    from explainlm.models.words import split_words

    subset = list(range(len(texts))) if only is None else list(only)

    def compute(part: list[int]) -> list[dict[str, Any]]:
        exps = explain(
            [texts[subset[i]] for i in part],
            clf,
            [req.method],
            target=req.target,
            method_params={req.method: req.method_params},
            max_batch_tokens=req.max_batch_tokens,
        )
        return [
            TextRecord.from_explanation(
                subset[i], e, None if gold is None else gold[subset[i]]
            ).to_dict()
            for i, e in zip(part, exps, strict=True)
        ]

    def cost(i: int) -> float:
        return method_cost(req.method, req.method_params, len(split_words(texts[subset[i]])))

    stored = chunked(
        ctx, run, EXPLANATIONS, len(subset), req.chunk_size, compute, "explaining", cost
    )
    return [TextRecord.from_dict(d) for d in stored]


def stored_records(ctx: ServiceContext, run_id: str, texts: Sequence[str]) -> dict[int, Any]:
    """The per-text attributions of an earlier finished run, by text position.

    The run may cover only the first texts of these data (a smaller ``limit``); every stored text
    must be the text at its position here.
    """
    from explainlm.behaviour.importance import TextRecord

    if ctx.store is None:
        raise UserError("reusing an importance run needs the run store")
    rec = ctx.store.get_run(run_id)
    if rec.status != "finished":
        raise UserError(f"run {rec.run_id} is {rec.status}: resume it first")
    out = {}
    for d in ctx.store.get_items(rec.run_id, EXPLANATIONS).values():
        r = TextRecord.from_dict(d)
        if r.index >= len(texts) or texts[r.index] != r.text:
            raise UserError(
                f"run {rec.run_id} explained other texts (text {r.index + 1} differs): "
                "use a run on the same data"
            )
        out[r.index] = r
    if not out:
        raise UserError(f"run {rec.run_id} holds no explained texts")
    return out


def all_records(ctx: ServiceContext, run_id: str, texts: Sequence[str]) -> list[Any]:
    found = stored_records(ctx, run_id, texts)
    if len(found) != len(texts):
        raise UserError(
            f"run {run_id} explained {len(found)} of these {len(texts)} texts; use the same limit"
        )
    return [found[i] for i in range(len(texts))]


# --------------------------------------------------------------------------------- jobs
def run_importance(req: ImportanceRequest, ctx: ServiceContext) -> Any:
    from explainlm.behaviour.importance import aggregate
    from explainlm.behaviour.trust import faithfulness_check

    texts, gold, data = load_texts(req)
    clf = load_classifier(ctx, req)
    with clf_lock(ctx, req), recorded(ctx, req) as run:
        records = explanation_records(ctx, run, clf, req, texts, gold)
        trust = faithfulness_check(
            clf, records, req.method, n=req.check_faithfulness, seed=req.seed
        )
        meta = {
            "model": clf.name,
            "dataset": data,
            "method": req.method,
            "target": req.target or "prob",
            "trust": trust,
        }
        imp = aggregate(
            records,
            ngram_range=(1, req.ngram_max),
            min_count=req.min_count,
            min_texts=req.min_texts,
            group_by=req.group_by,
            rank=req.rank,
            n_boot=req.n_boot,
            seed=req.seed,
            meta=meta,
        )
        imp.run_id = run.run_id
        run.summary.update(imp.to_json_doc(k=min(req.top, 10)))
        write_outputs(imp, req.outputs, run)
    return imp


def clf_lock(ctx: ServiceContext, req: GlobalRequest) -> Any:
    from contextlib import nullcontext

    from explainlm.models.blackbox import is_blackbox_spec

    return nullcontext() if is_blackbox_spec(req.model) else ctx.models.lock(req.model)


def model_predictions(
    ctx: ServiceContext, run: RunContext, clf: Any, req: GlobalRequest, texts: Sequence[str]
) -> list[dict[str, Any]]:
    """The model's label and probabilities for every text, stored per chunk."""

    def compute(part: list[int]) -> list[dict[str, Any]]:
        preds = clf.predict([texts[i] for i in part], max_batch_tokens=req.max_batch_tokens)
        return [{"label": p.label, "probs": p.probs} for p in preds]

    return chunked(
        ctx, run, PREDICTIONS, len(texts), max(req.chunk_size, 64), compute, "predicting"
    )


def run_surrogate(req: SurrogateRequest, ctx: ServiceContext) -> Any:
    from explainlm.behaviour.importance import aggregate
    from explainlm.behaviour.surrogate import SurrogateResult, fit_surrogates, split_indices

    texts, gold, data = load_texts(req)
    clf = load_classifier(ctx, req)
    with clf_lock(ctx, req), recorded(ctx, req) as run:
        preds = [p["label"] for p in model_predictions(ctx, run, clf, req, texts)]
        common = dict(
            ngram_range=(1, req.ngram_max),
            min_df=req.min_df,
            test_size=req.test_size,
            tree_depth=req.tree_depth,
            max_depth=req.max_depth,
            max_nonzero=req.max_nonzero,
            n_boot=req.n_boot,
            seed=req.seed,
            kinds=req.kinds,
        )
        reports = []
        if "bow" in req.features:
            reports += fit_surrogates(texts, preds, gold, **common)
        meta: dict[str, Any] = {
            "model": clf.name,
            "dataset": data,
            "n_texts": len(texts),
            "test_size": req.test_size,
        }
        if "top_words" in req.features:
            train, _ = split_indices(preds, req.test_size, req.seed)
            if req.importance_run:  # its texts in the training split (it may cover a prefix)
                pool = stored_records(ctx, req.importance_run, texts)
                records = [pool[i] for i in train if i in pool]
            else:
                records = explanation_records(ctx, run, clf, req, texts, gold, only=train)
            imp = aggregate(
                records,
                ngram_range=(1, req.ngram_max),
                min_count=max(req.min_df, 2),
                group_by="none",
                rank="total",
                n_boot=1,
            )
            vocab = [r["feature"] for r in imp.top("all", req.top_k, "total")]
            reports += fit_surrogates(
                texts,
                preds,
                gold,
                vocabulary=vocab,
                feature_set=f"top-{len(vocab)} {req.method} words",
                **common,
            )
            meta["top_words"] = {
                "method": req.method,
                "from": f"{len(records)} attributed texts of the training split",
                "words": vocab,
            }
        result = SurrogateResult(reports, meta, run.run_id)
        run.summary.update(
            {
                "surrogates": [
                    {
                        "kind": r.kind,
                        "features": r.feature_set,
                        "fidelity": r.fidelity,
                        "complexity": r.complexity,
                    }
                    for r in reports
                ]
            }
        )
        write_outputs(result, req.outputs, run)
    return result


def run_sensitivity(req: SensitivityRequest, ctx: ServiceContext) -> Any:
    import dataclasses

    from explainlm.behaviour.sensitivity import check_options, from_text_drops, text_drops
    from explainlm.engine import Engine
    from explainlm.evaluation import prepare_items
    from explainlm.targets import ClassTarget

    grid = check_options(req.x, req.replace, req.n_random, req.grid)
    texts, gold, data = load_texts(req)
    clf = load_classifier(ctx, req)
    with clf_lock(ctx, req), recorded(ctx, req) as run:
        if req.importance_run:
            records = all_records(ctx, req.importance_run, texts)
        else:
            records = explanation_records(ctx, run, clf, req, texts, gold)
        engine = Engine(clf, ClassTarget("prob"), max_batch_tokens=req.max_batch_tokens)

        def compute(part: list[int]) -> list[Any]:
            items = prepare_items(
                engine, [texts[i] for i in part], [records[i].label for i in part]
            )
            items = [dataclasses.replace(it, index=i) for it, i in zip(items, part, strict=True)]
            return text_drops(
                engine,
                items,
                [records[i].scores for i in part],
                grid,
                x=req.x,
                n_random=req.n_random,
                replace=req.replace,
                seed=req.seed,
            )

        def cost(i: int) -> float:
            return float(len(grid) * (1 + req.n_random))

        per_text = chunked(
            ctx, run, SENSITIVITY, len(texts), req.chunk_size, compute, "removing words", cost
        )
        meta = {
            "model": clf.name,
            "dataset": data,
            "method": req.method,
            "n_random": req.n_random,
            "replace": req.replace,
            "seed": req.seed,
        }
        res = from_text_drops(per_text, grid, req.x, n_boot=req.n_boot, seed=req.seed, meta=meta)
        res.run_id = run.run_id
        run.summary.update({"auc": res.auc, "difference": res.difference, "reading": res.reading()})
        write_outputs(res, req.outputs, run)
    return res


def run_layers(req: LayersRequest, ctx: ServiceContext) -> Any:
    from explainlm.engine import Engine
    from explainlm.internals.layer_attribution import layer_attribution
    from explainlm.targets import parse_target

    if req.dataset is not None and req.limit is None:
        req = req.model_copy(update={"limit": 20})  # a heat map per text: keep datasets short
    texts, _, data = load_texts(req)
    clf = load_classifier(ctx, req)
    with clf_lock(ctx, req), recorded(ctx, req) as run:
        engine = Engine(clf, parse_target(req.target), max_batch_tokens=req.max_batch_tokens)
        ctx.progress.start("layer attribution", len(texts))
        res = layer_attribution(
            engine,
            texts,
            req.points,
            method=req.method,
            steps=req.steps,
            baseline=req.baseline,
            progress=ctx.progress,
        )
        ctx.progress.close()
        res.meta["dataset"] = data
        res.run_id = run.run_id
        if run.store is not None:
            run.store.put_items(run.run_id, "global-layers", {"result": res.full_doc()})
        run.summary.update({"points": res.points, "n_texts": len(texts), "method": req.method})
        write_outputs(res, req.outputs, run)
    return res


RUNNERS: dict[type[GlobalRequest], Callable[[Any, ServiceContext], Any]] = {
    ImportanceRequest: run_importance,
    SurrogateRequest: run_surrogate,
    SensitivityRequest: run_sensitivity,
    LayersRequest: run_layers,
}


def run(request: GlobalRequest, ctx: ServiceContext) -> Any:
    """Run any global job (dispatch on the request's type)."""
    try:
        fn = RUNNERS[type(request)]
    except KeyError:
        raise UserError(f"not a global request: {type(request).__name__}") from None
    return fn(request, ctx)
