"""What the global jobs (:mod:`explainlm.services.behaviour`) share: loading the texts and the
classifier, the recorded run (reopened to resume), work in stored chunks (:func:`chunked`), and the
per-text attributions and predictions it stores (``items`` of kind ``global-explanations``,
``global-predictions``, ``global-sensitivity``; key = the text's position).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from explainlm.errors import DataFormatError, UserError
from explainlm.services.base import ServiceContext
from explainlm.services.behaviour_requests import GlobalRequest, _Attributing
from explainlm.store import RunContext

EXPLANATIONS, PREDICTIONS, SENSITIVITY = (
    "global-explanations",
    "global-predictions",
    "global-sensitivity",
)


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
    from explainlm.models.blackbox_loading import is_blackbox_spec, load_blackbox

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
        with ctx.recorded_run(req, model=req.model, extra=extra) as run:
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
    with ctx.recorded_run(req, model=req.model, resume=rec.run_id) as run:
        run.summary.update(rec.summary or {})
        yield run


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
            check=False,  # dataset-level trust: faithfulness_check on a sample (behaviour.trust)
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


def clf_lock(ctx: ServiceContext, req: GlobalRequest) -> Any:
    from contextlib import nullcontext

    from explainlm.models.blackbox_loading import is_blackbox_spec

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
