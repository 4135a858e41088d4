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

from collections.abc import Callable
from typing import Any

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext
from explainlm.services.behaviour_chunks import (
    EXPLANATIONS,
    PREDICTIONS,
    SENSITIVITY,
    all_records,
    chunked,
    clf_lock,
    explanation_records,
    load_classifier,
    load_texts,
    model_predictions,
    recorded,
    stored_records,
    write_outputs,
)
from explainlm.services.behaviour_requests import (
    GlobalRequest,
    ImportanceRequest,
    LayersRequest,
    SensitivityRequest,
    SurrogateRequest,
)

__all__ = [
    "EXPLANATIONS",
    "PREDICTIONS",
    "SENSITIVITY",
    "GlobalRequest",
    "ImportanceRequest",
    "LayersRequest",
    "SensitivityRequest",
    "SurrogateRequest",
    "run",
    "run_importance",
    "run_layers",
    "run_sensitivity",
    "run_surrogate",
]


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
