"""Benchmark: methods × metrics on a dataset, resumable, with CIs, paired tests and reports
(``explainlm benchmark``, ``POST /api/benchmark``).

Examples are processed in chunks; each finished example's metric rows are written to the run store
(``items`` of kind ``benchmark``, key = the example's position) before the next chunk starts, so an
interrupted run resumes (``resume=RUN_ID``, with the run's own stored settings) without
recomputing finished examples.

>>> req = BenchmarkRequest(methods="occlusion,random", params=["comprehensiveness.replace=mask"])
>>> req.method_params, req.metric_params
({}, {'comprehensiveness': {'replace': 'mask'}})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from explainlm.errors import UserError
from explainlm.services.base import (
    ServiceContext,
    ServiceRequest,
    json_safe,
    settings_of_older_runs,
)
from explainlm.services.common import (
    DEFAULT_MODEL,
    CsvList,
    Limit,
    MethodParams,
    ModelOptions,
    PrecisionOptions,
    check_methods,
)

ITEM_KIND = "benchmark"
DEFAULT_METHODS = ["integrated_gradients", "occlusion", "random"]
DEFAULT_METRICS = ["comprehensiveness", "sufficiency", "token_f1", "auprc"]


class BenchmarkRequest(ModelOptions, PrecisionOptions, ServiceRequest):
    """Every option of ``explainlm benchmark``."""

    command: ClassVar[str] = "benchmark"
    path_fields: ClassVar[tuple[str, ...]] = ("output", "data_dir")

    dataset: str = Field("sst-rationales", description="A built-in dataset name, or a file/folder.")
    split: str | None = Field(None, description="Dataset split (default: the dataset's own).")
    methods: CsvList = Field(default_factory=lambda: list(DEFAULT_METHODS))
    metrics: CsvList = Field(default_factory=lambda: list(DEFAULT_METRICS))
    params: MethodParams = Field(
        default_factory=dict, description="NAME.KEY=VALUE for a method or a metric."
    )
    limit: Limit = Field(None, description="Only the first N examples.")
    resume: str | None = Field(None, description="Resume an interrupted benchmark run by its id.")
    output: str | None = Field(None, description="Folder for results.md, CSV, Parquet, HTML.")
    data_dir: str | None = Field(None, description="Data directory.")
    group: str | None = Field(None, description="Annotator group of the rationale CSV.")
    window: Literal["split", "first", "none"] = Field("split", description="Long documents.")
    max_words: int = Field(300, ge=1, description="Words per window.")
    chunk_size: int = Field(8, ge=1, description="Examples per stored chunk.")
    test: Literal["wilcoxon", "permutation"] = Field("wilcoxon", description="Paired test.")
    seed: int = Field(0, description="Bootstrap and permutation seed.")
    n_boot: int = Field(2000, ge=100, description="Bootstrap resamples per CI.")
    text_column: str = "text"
    label_column: str = "label"
    rationale_column: str = "rationale"
    labels: CsvList | None = Field(None, description="Zero-shot labels.")

    @model_validator(mode="after")
    def _check(self) -> BenchmarkRequest:
        from explainlm.evaluation import get_metric

        unknown = set(self.params) - set(self.method_params) - set(self.metric_params)
        if unknown:
            raise UserError(
                f"--param for an unknown method or metric: {', '.join(sorted(unknown))}"
            )
        check_methods(self.methods, self.method_params)
        if not self.metrics:
            raise UserError("no metric given")
        unrequested = set(self.metric_params) - set(self.metrics)
        if unrequested:
            raise UserError(f"--param for a metric not requested: {', '.join(unrequested)}")
        for m in self.metrics:
            get_metric(m, **self.metric_params.get(m, {}))
        return self

    @property
    def method_params(self) -> dict[str, dict[str, Any]]:
        from explainlm.methods import METHODS

        return {k: v for k, v in self.params.items() if k in METHODS}

    @property
    def metric_params(self) -> dict[str, dict[str, Any]]:
        from explainlm.evaluation import METRICS

        return {k: v for k, v in self.params.items() if k in METRICS}


@dataclass
class BenchmarkResult:
    run_id: str
    model: str
    dataset: str
    n: int
    result: Any  # an explainlm.evaluation.EvaluationResult over every example
    table: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)  # keys computed by this call (not resumed)
    files: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    by_group: list[dict[str, Any]] = field(default_factory=list)  # rows with a ``group`` key

    def to_json_doc(self) -> dict[str, Any]:
        """The ``--json`` document (plus ``by_group`` when examples carry annotator groups)."""
        keys = ("method", "metric", "mean", "ci_low", "ci_high")
        doc: dict[str, Any] = {
            "run_id": self.run_id,
            "model": self.model,
            "dataset": self.dataset,
            "n": self.n,
            "table": [{k: r[k] for k in keys} for r in self.table],
            "tests": [{k: r[k] for k in ("metric", "a", "b", "p_value")} for r in self.tests],
        }
        if self.by_group:
            doc["by_group"] = [{k: r[k] for k in ("group", *keys)} for r in self.by_group]
        return json_safe(doc)


def stored_request(rec: Any) -> BenchmarkRequest:
    """The request a recorded benchmark run was made with (its stored spec)."""
    if rec.command != "benchmark":
        raise UserError(f"run {rec.run_id} is a {rec.command} run, not a benchmark")
    stored = dict(rec.params)
    if "params" not in stored:  # runs recorded before the full spec was stored
        stored["params"] = {**stored.get("method_params", {}), **stored.get("metric_params", {})}
    fields = {k: v for k, v in stored.items() if k in BenchmarkRequest.model_fields}
    fields.update(settings_of_older_runs(BenchmarkRequest, stored))
    return BenchmarkRequest.model_validate({**fields, "model": rec.model or DEFAULT_MODEL})


def resolved(request: BenchmarkRequest, ctx: ServiceContext) -> BenchmarkRequest:
    """With ``resume``: the resumed run's own settings (nothing has to be repeated; ``output``
    and ``device`` may be given anew)."""
    if not request.resume:
        return request
    if ctx.store is None:
        raise UserError("resuming a benchmark needs the run store")
    rec = ctx.store.get_run(request.resume)
    spec = stored_request(rec).model_dump()
    spec.update(resume=rec.run_id, device=request.device, output=request.output or spec["output"])
    return type(request).model_validate(spec)


def stored_result(store: Any, rec: Any) -> BenchmarkResult:
    """A finished benchmark run's result, recomputed from its stored rows (for reports)."""
    request = stored_request(rec)
    items = store.get_items(rec.run_id, ITEM_KIND)
    mparams = rec.params.get("metric_params") or request.metric_params
    result = summarise(request, rec.run_id, [items[k] for k in sorted(items)], mparams)
    result.params = dict(rec.params)
    return result


def read_examples(request: BenchmarkRequest) -> list[Any]:
    """The dataset's examples as stored (read before any model loads: bad data fails first)."""
    from explainlm.datasets import load_dataset

    return load_dataset(
        request.dataset,
        split=request.split,
        data_dir=request.data_dir,
        group=request.group,
        text_column=request.text_column,
        label_column=request.label_column,
        rationale_column=request.rationale_column,
    )


def load_examples(
    request: BenchmarkRequest,
    count_tokens: Any = None,
    max_tokens: Any = None,
    examples: list[Any] | None = None,
) -> list[Any]:
    """The dataset's examples, cut into windows the model reads whole, then cut to ``limit``."""
    from explainlm.datasets import windows

    examples = windows(
        examples if examples is not None else read_examples(request),
        max_words=request.max_words,
        strategy=request.window,
        count_tokens=count_tokens,
        max_tokens=max_tokens,
    )
    return examples[: request.limit] if request.limit is not None else examples


def run(request: BenchmarkRequest, ctx: ServiceContext) -> BenchmarkResult:
    """Load the dataset and the model, then :func:`benchmark_examples`."""
    request = resolved(request, ctx)
    if request.output is not None and Path(request.output).is_file():
        raise UserError(f"--output must be a folder, but {request.output} is a file")
    raw = read_examples(request)
    clf = ctx.task(request.model, labels=request.labels)
    max_len = int(getattr(clf.wrapper, "max_length", 512))
    examples = load_examples(request, lambda t: len(clf.encode([t])[0]), max_len, raw)
    return benchmark_examples(request, ctx, clf, examples)


def mean_rationale_length(examples: Sequence[Any]) -> int | None:
    lengths = [sum(e.rationale) for e in examples if e.rationale is not None]
    return max(1, int(round(float(np.mean(lengths))))) if lengths else None


def metric_params_for(request: BenchmarkRequest, examples: Sequence[Any]) -> dict[str, Any]:
    """The metrics' parameters; token/IOU F1 use k = the mean human rationale length over all
    examples (so every chunk, and a resumed run, agrees)."""
    params = {k: dict(v) for k, v in request.metric_params.items()}
    k = mean_rationale_length(examples)
    for m in ("token_f1", "iou_f1"):
        if m in request.metrics and k is not None:
            params.setdefault(m, {}).setdefault("k", k)
    return params


def benchmark_examples(
    request: BenchmarkRequest, ctx: ServiceContext, classifier: Any, examples: Sequence[Any]
) -> BenchmarkResult:
    """Explain every example with every method, evaluate every metric, and summarise (the run is
    recorded before it waits for the model; ``auto``'s calibration runs first if it has none)."""
    from explainlm.services.precision_plan import pin_precision

    if not examples:
        raise UserError("no examples to benchmark")
    mparams = metric_params_for(request, examples)
    extra = {
        "method_params": request.method_params,
        "metric_params": mparams,
        "n_examples": len(examples),
    }
    if request.resume and ctx.store is not None:
        stored = ctx.store.get_run(request.resume).params.get("n_examples")
        if stored is not None and stored != len(examples):
            raise UserError(
                f"cannot resume {request.resume}: it had {stored} examples, now {len(examples)}"
            )
    keys = [f"{i:06d}" for i in range(len(examples))]
    recording = ctx.recorded_run(request, model=request.model, resume=request.resume, extra=extra)
    with recording as run, ctx.model_lock(request.model):
        # under the lock: auto may measure the model once; a resume runs the plan it started with
        request = pin_precision(request, classifier, ctx, run)
        extra["precision_plan"] = request.precision_plan
        if "auto" in request.methods:  # auto's stored per-model calibration (trust.md)
            from explainlm.services.calibration import ensure_calibration

            ensure_calibration(ctx, request.model, classifier)
        items = ctx.store.get_items(run.run_id, ITEM_KIND) if ctx.store is not None else {}
        todo = [i for i, key in enumerate(keys) if key not in items]
        computed: list[str] = []
        with ctx.progress.stage_of("benchmark", len(examples)) as progress:
            if len(examples) > len(todo):
                progress.advance(len(examples) - len(todo), "resumed")
            for s in range(0, len(todo), request.chunk_size):
                idx = todo[s : s + request.chunk_size]
                inner = progress.child(len(idx))  # the explanation passes move the bar
                payload = evaluate_chunk(request, classifier, examples, idx, keys, mparams, inner)
                inner.close()
                if ctx.store is not None:
                    ctx.store.put_items(run.run_id, ITEM_KIND, payload)
                items.update(payload)
                computed += [keys[i] for i in idx]
                progress.advance(len(idx))
        result = summarise(request, run.run_id, [items[k] for k in keys], mparams)
        result.computed = computed
        result.params = {**request.spec(), **extra}
        if request.output is not None:
            from explainlm.report.benchmark import write_outputs

            result.files = [str(p) for p in write_outputs(result, Path(request.output))]
        run.summary = {**result.to_json_doc(), "files": result.files,
                       "precision_plan": extra["precision_plan"]}  # fmt: skip
    return result


def evaluate_chunk(
    request: BenchmarkRequest,
    classifier: Any,
    examples: Sequence[Any],
    idx: Sequence[int],
    keys: Sequence[str],
    metric_params: Mapping[str, Any],
    progress: Any = None,
) -> dict[str, Any]:
    """The stored payload of the examples ``idx``: per key, the example id, metric rows and
    method-agreement rows (texts left out: the examples hold them)."""
    from explainlm.attribution import explain
    from explainlm.evaluation import evaluate

    exps = explain(
        [examples[i].text for i in idx],
        classifier,
        request.methods,
        method_params=request.method_params,
        progress=progress,
        precision=request.pinned_precision(),
        max_batch_tokens=request.max_batch_tokens,
    )
    owner = [idx[j // len(request.methods)] for j in range(len(exps))]
    res = evaluate(
        exps,
        request.metrics,
        classifier,
        rationales=[examples[i].rationale for i in owner],
        metric_params={m: metric_params[m] for m in request.metrics if m in metric_params},
        example_ids=[examples[i].id for i in owner],
        groups=[examples[i].group for i in owner],
    )
    payload: dict[str, Any] = {
        keys[i]: {"id": examples[i].id, "rows": [], "agreement": []} for i in idx
    }
    by_id = {examples[i].id: keys[i] for i in idx}
    for r in res.rows:
        payload[by_id[r["example"]]]["rows"].append({x: y for x, y in r.items() if x != "text"})
    owner_of_text = {e.text: i for e, i in zip(exps, owner, strict=True)}  # e.text: as truncated
    for a in res.agreement:
        text_owner = owner_of_text[a["text"]]
        payload[keys[text_owner]]["agreement"].append({x: y for x, y in a.items() if x != "text"})
    return json_safe(payload)


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def summarise(
    request: BenchmarkRequest,
    run_id: str,
    stored: Sequence[dict[str, Any]],
    metric_params: Mapping[str, Any],
) -> BenchmarkResult:
    """Means with bootstrap CIs, paired tests and per-group tables from the stored rows."""
    from explainlm.evaluation import EvaluationResult, get_metric

    higher = {
        m: get_metric(m, **metric_params.get(m, {})).higher_is_better for m in request.metrics
    }
    result = EvaluationResult(higher_is_better=higher)
    for item in stored:
        result.rows += [{**r, "value": _nan(r.get("value"))} for r in item["rows"]]
        result.agreement += [{**a, "spearman": _nan(a.get("spearman"))} for a in item["agreement"]]
    boot = {"n_boot": request.n_boot, "seed": request.seed}
    grouped = any(r.get("group") for r in result.rows)
    return BenchmarkResult(
        run_id,
        request.model,
        request.dataset,
        len(stored),
        result,
        result.summary(**boot),
        result.tests(test=request.test, seed=request.seed),
        by_group=result.summary(**boot, by_group=True) if grouped else [],
    )
