"""The work behind each endpoint: the same calls and run-store records as the CLI commands.

Each ``run_*`` function takes a validated request, the model registry and the :class:`Job` it runs
in (for progress and cancellation) and returns the CLI's ``--json`` document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from explainlm.server.errors import ApiError
from explainlm.server.jobs import Job
from explainlm.server.registry import ModelRegistry
from explainlm.server.schemas import ExplainRequest, GenerateRequest, PredictRequest

CHUNK = 8


def clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars → Python numbers, NaN/inf → None, tuples → lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    try:
        f = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    if not math.isfinite(f):
        return None
    return int(f) if type(obj).__name__.startswith(("int", "uint")) else f


def _task_of(registry: ModelRegistry, model: str, req: Any, task: str | None = None) -> Any:
    return registry.task(
        model,
        task if task is not None else getattr(req, "task", None),
        labels=getattr(req, "labels", None),
        template=getattr(req, "template", None),
        calibrate=getattr(req, "calibrate", None),
        chat=getattr(req, "chat", None),
    )


def run_predict(
    req: PredictRequest, registry: ModelRegistry, model: str, job: Job
) -> dict[str, Any]:
    """``explainlm predict --json``."""
    from explainlm.store import open_store

    texts = req.all_texts()
    clf = _task_of(registry, model, req)
    params = {"n_texts": len(texts), **clf.describe(), "input": None, "truncate": req.truncate}
    store = open_store()
    preds: list[dict[str, Any]] = []
    with registry.lock(model), store.recorded_run("predict", model=model, params=params) as run:
        for start in range(0, len(texts), CHUNK):
            job.step(start, len(texts), "predicting")
            kw: dict[str, Any] = {"truncation": req.truncate}
            if clf.task == "generator":
                kw["max_new_tokens"] = req.max_new_tokens
            out = [p.to_dict() for p in clf.predict(texts[start : start + CHUNK], **kw)]
            store.add_predictions(run.run_id, out, start=len(preds))
            preds += out
        counts: dict[str, int] = {}
        for p in preds:
            counts[p["label"]] = counts.get(p["label"], 0) + 1
        run.summary = {"n": len(preds), "label_counts": counts}
    return clean({"run_id": run.run_id, "model": model, "predictions": preds})


def run_explain(
    req: ExplainRequest,
    registry: ModelRegistry,
    model: str,
    methods: Sequence[str],
    params: dict[str, dict[str, Any]],
    job: Job,
) -> dict[str, Any]:
    """``explainlm explain --json`` (plus summaries and faithfulness when asked)."""
    from explainlm.attribution import explain
    from explainlm.explanation import ExplanationSet
    from explainlm.models import Classifier
    from explainlm.store import open_store

    texts = req.all_texts()
    clf = _task_of(registry, model, req)
    if not isinstance(clf, Classifier):
        raise ApiError(400, f"{model} as {clf.task} is not a classifier: use /api/generate")
    run_params = {
        "methods": list(methods),
        "method_params": params,
        "target": req.target,
        "contrast": req.contrast,
        "granularity": req.granularity,
        "n_texts": len(texts),
        "input": None,
        "mixed_precision": False,
        "source": "server",
        **clf.describe(),
    }
    steps = len(methods) + (1 if req.faithfulness else 0)
    store = open_store()
    faith: list[dict[str, Any]] | None = None
    with registry.lock(model), store.recorded_run("explain", model=model, params=run_params) as run:
        parts = []
        for i, m in enumerate(methods):
            job.step(i, steps, f"explaining with {m}")
            parts.append(
                explain(
                    texts,
                    clf,
                    [m],
                    target=req.target,
                    contrast=req.contrast,
                    granularity=req.granularity,
                    method_params={m: params[m]} if m in params else None,
                    max_batch_tokens=req.max_batch_tokens,
                    truncation=req.truncate,
                )
            )
        res = ExplanationSet(
            [parts[m][i] for i in range(len(texts)) for m in range(len(methods))],
            run_id=run.run_id,
        )
        store.add_explanations(run.run_id, res)
        run.summary = {"n_explanations": len(res)}
        if req.faithfulness:
            from explainlm.server.faithfulness import faithfulness

            job.step(len(methods), steps, "scoring faithfulness")
            faith = clean(faithfulness(res, clf, max_batch_tokens=req.max_batch_tokens))
            run.summary["faithfulness"] = faith
    docs = [e.to_json_doc() for e in res]
    if req.summary:
        from explainlm.report.heatmap import summary

        for d, e in zip(docs, res, strict=True):
            d["summary"] = summary(e)
    doc: dict[str, Any] = {"run_id": run.run_id, "model": model, "explanations": docs}
    if faith is not None:
        doc["faithfulness"] = faith
    return clean(doc)


def run_generate(
    req: GenerateRequest,
    registry: ModelRegistry,
    model: str,
    methods: Sequence[str],
    params: dict[str, dict[str, Any]],
    job: Job,
) -> dict[str, Any]:
    """``explainlm generate --json`` (plus summaries when asked)."""
    from explainlm.generation import GenerationSet, explain_generation
    from explainlm.models import Generator
    from explainlm.store import open_store

    prompt = req.the_prompt() or ""
    gen = _task_of(registry, model, req, "generator")
    if not isinstance(gen, Generator):  # pragma: no cover - make_task guarantees it
        raise ApiError(400, f"{model} cannot generate")
    run_params = {
        "methods": list(methods),
        "method_params": params,
        "max_new_tokens": req.max_new_tokens,
        "target_text": req.target_text,
        "target": req.target,
        "contrast": req.contrast,
        "granularity": req.granularity,
        "chat": req.chat,
        "sample": req.sample,
        "seed": req.seed,
        "source": "server",
    }
    store = open_store()
    with (
        registry.lock(model),
        store.recorded_run("generate", model=model, params=run_params) as run,
    ):
        items = []
        for i, m in enumerate(methods):
            job.step(i, len(methods), f"attributing with {m}")
            items += list(
                explain_generation(
                    [prompt],
                    gen,
                    [m],
                    max_new_tokens=req.max_new_tokens,
                    target_texts=[req.target_text] if req.target_text else None,
                    target=req.target,
                    foil=req.contrast,
                    granularity=req.granularity,
                    do_sample=req.sample,
                    seed=req.seed,
                    method_params={m: params[m]} if m in params else None,
                    max_batch_tokens=req.max_batch_tokens,
                )
            )
        res = GenerationSet(items, run_id=run.run_id)
        store.put_items(
            run.run_id, "generation", {f"{k:04d}": a.to_dict() for k, a in enumerate(res)}
        )
        run.summary = {"continuation": res[0].continuation, "methods": list(methods)}
    attributions = [a.to_json_doc() for a in res]
    if req.summary:
        from explainlm.report.matrix import summary

        for d, a in zip(attributions, res, strict=True):
            d["summary"] = summary(a)
            d["continuation"] = a.continuation
    return clean(
        {"run_id": run.run_id, "model": model, "prompt": prompt, "attributions": attributions}
    )


def benchmark_function() -> Any:
    """``explainlm.evaluation``'s benchmark runner and dataset loader, or None when absent."""
    try:
        from explainlm.datasets import DATASETS, load_dataset
        from explainlm.evaluation.benchmark import run_benchmark
    except ImportError:
        return None
    return run_benchmark, load_dataset, DATASETS


def run_benchmark_job(
    req: Any, registry: ModelRegistry, model: str, params: dict[str, dict[str, Any]], job: Job
) -> dict[str, Any]:
    """``explainlm benchmark --json`` on a built-in dataset, with progress per stored chunk."""
    found = benchmark_function()
    if found is None:  # pragma: no cover - checked before the job is queued
        raise ApiError(501, "benchmarking is not available in this installation")
    run_benchmark, load_dataset, _ = found
    from explainlm.evaluation import METRICS
    from explainlm.server.errors import JobCancelled
    from explainlm.store import open_store

    metric_names = set(METRICS)
    examples = load_dataset(req.dataset, split=req.split, group=req.group)[: req.limit]
    clf = _task_of(registry, model, req)
    done = [0]

    def on_chunk(keys: list[str]) -> None:
        done[0] += len(keys)
        if job.cancel_event.is_set():
            raise JobCancelled("cancelled")
        job.step(done[0], len(examples), f"{done[0]}/{len(examples)} examples")

    with registry.lock(model):
        res = run_benchmark(
            clf,
            examples,
            req.methods or ["integrated_gradients", "occlusion", "random"],
            req.metrics or ["comprehensiveness", "sufficiency"],
            model_name=model,
            dataset_name=req.dataset,
            method_params={k: v for k, v in params.items() if k not in metric_names},
            metric_params={k: v for k, v in params.items() if k in metric_names},
            store=open_store(),
            on_chunk=on_chunk,
            test=req.test,
            seed=req.seed,
            extra_params={"split": req.split, "limit": req.limit, "source": "server"},
        )
    return clean(res.to_json_doc())
