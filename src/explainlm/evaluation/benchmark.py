"""Benchmarks: methods × metrics on a dataset, resumable, with CIs, paired tests and reports.

Examples are processed in chunks; each finished example's metric rows are written to the run store
(``items`` of kind ``benchmark``, key = the example's position) before the next chunk starts, so an
interrupted run resumes (``resume=RUN_ID``) without recomputing finished examples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from explainlm.datasets import RationaleExample
from explainlm.errors import UserError
from explainlm.evaluation.api import EvaluationResult, evaluate, get_metric
from explainlm.store import RunStore, open_store

ITEM_KIND = "benchmark"


@dataclass
class BenchmarkResult:
    run_id: str
    model: str
    dataset: str
    n: int
    result: EvaluationResult
    table: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)  # keys computed by this call (not resumed)
    files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    by_group: list[dict[str, Any]] = field(default_factory=list)  # rows with a ``group`` key

    def to_json_doc(self) -> dict[str, Any]:
        """The ``--json`` document (plus ``by_group`` when examples carry annotator groups)."""
        doc: dict[str, Any] = {
            "run_id": self.run_id,
            "model": self.model,
            "dataset": self.dataset,
            "n": self.n,
            "table": [
                {k: _finite(r[k]) for k in ("method", "metric", "mean", "ci_low", "ci_high")}
                for r in self.table
            ],
            "tests": [
                {k: _finite(r[k]) for k in ("metric", "a", "b", "p_value")} for r in self.tests
            ],
        }
        if self.by_group:
            doc["by_group"] = [
                {
                    k: _finite(r[k])
                    for k in ("group", "method", "metric", "mean", "ci_low", "ci_high")
                }
                for r in self.by_group
            ]
        return doc


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def mean_rationale_length(examples: Sequence[RationaleExample]) -> int | None:
    lengths = [sum(e.rationale) for e in examples if e.rationale is not None]
    return max(1, int(round(float(np.mean(lengths))))) if lengths else None


def run_benchmark(
    classifier: Any,
    examples: Sequence[RationaleExample],
    methods: Sequence[str],
    metrics: Sequence[str],
    *,
    model_name: str,
    dataset_name: str,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    store: RunStore | None = None,
    resume: str | None = None,
    chunk_size: int = 8,
    progress: bool = False,
    on_chunk: Callable[[list[str]], None] | None = None,
    test: str = "wilcoxon",
    seed: int = 0,
    n_boot: int = 2000,
    output: str | os.PathLike[str] | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> BenchmarkResult:
    """Explain every example with every method, evaluate every metric, and summarise.

    ``on_chunk(keys)`` is called after each chunk is stored (tests use it to interrupt a run).
    Token F1 / IOU F1 use k = the mean human rationale length over *all* examples (so chunks agree).
    """
    from explainlm.attribution import explain

    if not examples:
        raise UserError("no examples to benchmark")
    if chunk_size < 1:
        raise UserError("chunk size must be at least 1")
    store = store or open_store()
    mparams = {k: dict(v) for k, v in (metric_params or {}).items()}
    k = mean_rationale_length(examples)
    for m in ("token_f1", "iou_f1"):
        if m in metrics and k is not None:
            mparams.setdefault(m, {}).setdefault("k", k)
    for m in metrics:  # validate before any work
        get_metric(m, **mparams.get(m, {}))
    params = {
        "dataset": dataset_name,
        "methods": list(methods),
        "metrics": list(metrics),
        "method_params": {k2: dict(v) for k2, v in (method_params or {}).items()},
        "metric_params": mparams,
        "n_examples": len(examples),
        "test": test,
        "seed": seed,
        **dict(extra_params or {}),
    }
    if resume:
        rec = store.get_run(resume)
        if rec.command != "benchmark":
            raise UserError(f"run {rec.run_id} is a {rec.command} run, not a benchmark")
        for key in ("dataset", "methods", "metrics", "n_examples"):
            if rec.params.get(key) != params[key]:
                raise UserError(
                    f"cannot resume {rec.run_id}: its {key} was {rec.params.get(key)!r}, "
                    f"now {params[key]!r}"
                )
        store.reopen_run(rec.run_id)
        run_id = rec.run_id
    else:
        run_id = store.start_run("benchmark", model=model_name, params=params)
    try:
        done = store.get_items(run_id, ITEM_KIND)
        keys = [f"{i:06d}" for i in range(len(examples))]
        todo = [i for i, key in enumerate(keys) if key not in done]
        computed: list[str] = []
        bar = tqdm(
            total=len(examples),
            initial=len(examples) - len(todo),
            desc="benchmark",
            unit="example",
            disable=not progress,
        )
        for s in range(0, len(todo), chunk_size):
            idx = todo[s : s + chunk_size]
            chunk = [examples[i] for i in idx]
            exps = explain(
                [e.text for e in chunk],
                classifier,
                list(methods),
                method_params=method_params,
            )
            owner = [idx[j // len(methods)] for j in range(len(exps))]
            res = evaluate(
                exps,
                list(metrics),
                classifier,
                rationales=[examples[i].rationale for i in owner],
                metric_params={m: mparams[m] for m in metrics if m in mparams},
                example_ids=[examples[i].id for i in owner],
                groups=[examples[i].group for i in owner],
            )
            payload: dict[str, Any] = {
                keys[i]: {"id": examples[i].id, "rows": [], "agreement": []} for i in idx
            }
            by_id = {examples[i].id: keys[i] for i in idx}
            for r in res.rows:
                payload[by_id[r["example"]]]["rows"].append(
                    {x: y for x, y in r.items() if x != "text"}
                )
            for a in res.agreement:
                text_owner = next(i for i in idx if examples[i].text == a["text"])
                payload[keys[text_owner]]["agreement"].append(
                    {x: y for x, y in a.items() if x != "text"}
                )
            store.put_items(run_id, ITEM_KIND, _clean(payload))
            new_keys = [keys[i] for i in idx]
            computed += new_keys
            bar.update(len(idx))
            if on_chunk is not None:
                on_chunk(new_keys)
        bar.close()
        stored = store.get_items(run_id, ITEM_KIND)
        higher = {m: get_metric(m, **mparams.get(m, {})).higher_is_better for m in metrics}
        result = EvaluationResult(higher_is_better=higher)
        for key in keys:
            for r in stored[key]["rows"]:
                result.rows.append({**r, "value": _nan(r.get("value"))})
            for a in stored[key]["agreement"]:
                result.agreement.append({**a, "spearman": _nan(a.get("spearman"))})
        table = result.summary(n_boot=n_boot, seed=seed)
        tests = result.tests(test=test, seed=seed)
        out = BenchmarkResult(
            run_id,
            model_name,
            dataset_name,
            len(examples),
            result,
            table,
            tests,
            computed,
            params=params,
            by_group=result.summary(n_boot=n_boot, seed=seed, by_group=True)
            if any(r.get("group") for r in result.rows)
            else [],
        )
        if output is not None:
            from explainlm.evaluation.report import write_outputs

            out.files = [str(p) for p in write_outputs(out, Path(output))]
        summary = {**out.to_json_doc(), "files": out.files}
        store.finish_run(run_id, summary=_clean(summary))
        return out
    except KeyboardInterrupt:
        store.finish_run(run_id, status="interrupted", error="interrupted")
        raise
    except BaseException as e:
        store.finish_run(run_id, status="failed", error=f"{type(e).__name__}: {e}")
        raise
