"""Dataset jobs: one job over a whole table of texts, on the local backend or a cluster backend.

A dataset job is a service request (``predict``, ``explain``, ``generate``, ``benchmark``, the
audits) plus :class:`BackendOptions` saying where it runs. ``backend="local"`` is the service's own ``run``;
other backends (``ray``: :mod:`explainlm.scale`) come from the ``explainlm.backends`` entry point
group, so this layer never imports a front-end.

A cluster backend runs **the same per-shard code** as the local service: a shard is exactly one of
the local run's chunks (rows ``[k * shard_rows, (k + 1) * shard_rows)``, ``shard_rows`` = the
service's chunk size), computed by :attr:`DatasetJob.compute`, which calls the function the local
service calls on that chunk. The engine packs each shard's passes under the request's token budget,
as locally, so the merged result is the local result, number for number and in the same order.
An audit's items come in stages (:mod:`explainlm.audits.plans`) whose chunks its workers report
(``shard_sizes``); its statistics are computed on the driver from the merged items.

>>> JOBS["explain"].shard_rows(None), JOBS["predict"].shard_rows(None), JOBS.names()[:4]
(64, 32, ['explain', 'predict', 'generate', 'benchmark'])
>>> BackendOptions(backend="ray", actors=2).spec()["actors"]
2
>>> BackendOptions(backend="ray", address="ray://head:10001", gpus_per_actor=0.5).gpus_per_actor
0.5
>>> from explainlm.services.base import build_request
>>> build_request(BackendOptions, backend="local", actors=3)  # what the CLI does
Traceback (most recent call last):
...
explainlm.errors.UserError: --actors, --address, --gpus-per-actor, --results-dir and --resume need --backend ray
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.progress import Progress
from explainlm.registry import Registry
from explainlm.services import benchmark as benchmark_service
from explainlm.services import explain as explain_service
from explainlm.services import generate as generate_service
from explainlm.services import predict as predict_service
from explainlm.services.base import ServiceContext, ServiceRequest

BACKENDS = ("local", "ray")
ITEM_KIND = "shard"  # the run store's index of a dataset job's shards (items of this kind)


class BackendOptions(BaseModel):
    """Where and how a dataset job runs (``--backend``, ``--address``, ``--actors``, …)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "ray"] = "local"
    address: str | None = Field(
        None,
        description="auto (a running cluster), ray://HOST:PORT, or none: start one on this machine.",
    )
    actors: int | None = Field(None, ge=1, description="Actors (model copies); default 2.")
    gpus_per_actor: float | None = Field(None, ge=0, description="GPUs per actor (0.5: two share).")
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs per actor (its torch threads).")
    output: str | None = Field(
        None, description="Folder of the Parquet result dataset (default: under EXPLAINLM_HOME)."
    )
    resume: str | None = Field(None, description="Resume this unfinished run (its own settings).")
    max_retries: int = Field(2, ge=0, description="Retries of a failing shard before row by row.")

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and v != "auto" and not v.startswith("ray://") and ":" not in v:
            raise UserError(f"--address takes auto, ray://HOST:PORT or HOST:PORT, got {v!r}")
        return v

    @model_validator(mode="after")
    def _only_for_clusters(self) -> BackendOptions:
        cluster = (self.actors, self.address, self.gpus_per_actor, self.output, self.resume)
        if self.backend == "local" and any(v is not None for v in cluster):
            raise UserError(
                "--actors, --address, --gpus-per-actor, --results-dir and --resume need --backend ray"
            )
        return self

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class DatasetJob:
    """How a job kind runs shard by shard.

    ``load(request, models)``: the worker's state — the model as the task the service uses, and
    for ``inputs="examples"`` the dataset's examples — once per worker;
    ``compute(request, state, units)``: the output records of one shard (``units``: its texts, or
    its example indices), each ``{"row": i, "seq": j, **payload}`` with ``i`` the unit's position
    in the shard — the service's own per-chunk code;
    ``merge(request, run_id, records, meta)``: the service's result from all records in order.
    ``shard_rows(request)``: rows per shard = the local run's chunk. ``describe(request, state)``:
    facts a worker learns while loading (``n_rows``; ``shard_sizes`` when shards are not all
    ``shard_rows`` long, …), for ``inputs="examples"``.
    ``columns``: payload fields also stored as typed Parquet columns. ``item_kind``: records are
    also stored as the run store's items of this kind (as the local run does), ``item(row,
    record)`` giving each one's key and value (default: its ``key``, the rest of the record).
    ``check(request)``: what the driver checks before any model loads (bad data, options a
    cluster does not take). ``input_paths(request)``: the input files a resume checks unchanged.
    ``finish(request, store, run_id, merged)``: records the merged result in the run store when
    every row succeeded (the statistics of an audit), returning additions to the run's summary.
    ``plan_model(state)``: for jobs with a precision option, the task of a worker's state whose
    model the run's precision plan is resolved on (once, by the first worker; every worker then
    computes in it, see :mod:`explainlm.services.precision_plan`).
    """

    command: str
    request: type[ServiceRequest]
    shard_rows: Callable[[Any], int | None]  # None: the workers' shard_sizes
    load: Callable[[Any, Any], Any]
    compute: Callable[[Any, Any, Sequence[Any]], list[dict[str, Any]]]
    merge: Callable[[Any, str | None, Sequence[dict[str, Any]], dict[str, Any]], Any]
    columns: tuple[str, ...] = ()
    inputs: Literal["texts", "examples"] = "texts"
    describe: Callable[[Any, Any], dict[str, Any]] | None = None
    item_kind: str | None = None
    item: Callable[[int, dict[str, Any]], tuple[str, Any]] | None = None
    check: Callable[[Any], None] | None = None
    input_paths: Callable[[Any], list[str]] = lambda request: [getattr(request, "input", None)]
    finish: Callable[[Any, Any, str, Any], dict[str, Any]] | None = None
    plan_model: Callable[[Any], Any] | None = None

    def store_item(self, row: int, record: dict[str, Any]) -> tuple[str, Any]:
        """The run store's item (key, value) of the record of input row ``row``."""
        if self.item is not None:
            return self.item(row, record)
        return record["key"], {k: v for k, v in record.items() if k not in ("row", "seq", "key")}


def _itself(state: Any) -> Any:
    return state


def _load_task(request: Any, models: Any) -> Any:
    return models.task(request.model, request.task, **request.task_options())


def _load_classifier(request: Any, models: Any) -> Any:
    from explainlm.models import Classifier

    clf = _load_task(request, models)
    if not isinstance(clf, Classifier):
        raise UserError(
            f"{request.model} as {clf.task} is not a classifier: use generate to explain generation"
        )
    return clf


def _explain_compute(request: Any, clf: Any, texts: Sequence[str]) -> list[dict[str, Any]]:
    # a Progress as the local run passes one: the engine packs its passes the same way with it
    part = explain_service.explain_texts(request, clf, texts, Progress())
    per_text = len(request.methods)
    if len(part) != per_text * len(texts):  # pragma: no cover - explain() guarantees it
        raise RuntimeError(f"{len(part)} explanations for {len(texts)} texts × {per_text} methods")
    return [{"row": i // per_text, "seq": i % per_text, **e.to_dict()} for i, e in enumerate(part)]


def _explain_merge(
    request: Any, run_id: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> Any:
    from explainlm.explanation import Explanation, ExplanationSet

    exps = ExplanationSet([Explanation.from_dict(r) for r in records], run_id=run_id)
    result = explain_service.ExplainResult(run_id, request.model, exps, None, request.summary)
    if request.html:
        result.report = explain_service.write_report(request, result)
    return result


def _predict_compute(request: Any, clf: Any, texts: Sequence[str]) -> list[dict[str, Any]]:
    out = predict_service.predict_texts(request, clf, texts)
    return [{"row": i, "seq": 0, **p} for i, p in enumerate(out)]


def _predict_merge(
    request: Any, run_id: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> Any:
    keep = [{k: v for k, v in r.items() if k not in ("row", "seq")} for r in records]
    return predict_service.PredictResult(run_id, request.model, keep)


JOBS: Registry[DatasetJob] = Registry("dataset job")
JOBS.add(
    "explain",
    DatasetJob(
        "explain",
        explain_service.ExplainRequest,
        lambda _request: explain_service.CHUNK,
        _load_classifier,
        _explain_compute,
        _explain_merge,
        ("text", "method", "target", "label", "predicted", "units", "scores"),
        plan_model=_itself,
    ),
)
JOBS.add(
    "predict",
    DatasetJob(
        "predict",
        predict_service.PredictRequest,
        lambda _request: predict_service.CHUNK,
        _load_task,
        _predict_compute,
        _predict_merge,
        ("text", "label"),
        plan_model=_itself,
    ),
)


def _generate_load(request: Any, models: Any) -> Any:
    return models.task(request.model, "generator", chat=request.chat)


def _generate_compute(request: Any, gen: Any, prompts: Sequence[str]) -> list[dict[str, Any]]:
    part = generate_service.attribute(request, gen, prompts, Progress())
    per_prompt = len(request.methods)
    return [
        {"row": i // per_prompt, "seq": i % per_prompt, **a.to_dict()} for i, a in enumerate(part)
    ]


def _generate_merge(
    request: Any, run_id: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> Any:
    from explainlm.generation import GenerationAttribution, GenerationSet

    atts = GenerationSet([GenerationAttribution.from_dict(r) for r in records], run_id=run_id)
    prompts = [a.prompt for a in list(atts)[:: len(request.methods)]]
    return generate_service.merged_result(request, run_id, atts, prompts)


def _generate_check(request: Any) -> None:
    if request.input is None:
        raise UserError("--backend ray generates over --input FILE (a prompt per row)")


JOBS.add(
    "generate",
    DatasetJob(
        "generate",
        generate_service.GenerateRequest,
        lambda request: request.chunk_size,
        _generate_load,
        _generate_compute,
        _generate_merge,
        ("prompt", "continuation", "method", "target", "source_units", "target_units"),
        item_kind="generation",  # as the local run stores them (runs show, export)
        item=lambda row, r: (
            generate_service.item_key(row, r["seq"]),
            {k: v for k, v in r.items() if k not in ("row", "seq")},
        ),
        check=_generate_check,
        plan_model=_itself,
    ),
)


@dataclass
class BenchmarkState:
    """A benchmark worker's model and examples (windowed with its tokenizer, as locally)."""

    classifier: Any
    examples: list[Any]
    metric_params: dict[str, Any]
    keys: list[str]


def _benchmark_load(request: Any, models: Any) -> BenchmarkState:
    clf = models.task(request.model, labels=request.labels)
    max_len = int(getattr(clf.wrapper, "max_length", 512))
    examples = benchmark_service.load_examples(request, lambda t: len(clf.encode([t])[0]), max_len)
    if not examples:
        raise UserError("no examples to benchmark")
    mparams = benchmark_service.metric_params_for(request, examples)
    return BenchmarkState(clf, examples, mparams, [f"{i:06d}" for i in range(len(examples))])


def _benchmark_describe(request: Any, state: BenchmarkState) -> dict[str, Any]:
    return {"n_rows": len(state.examples), "metric_params": state.metric_params}


def _benchmark_compute(
    request: Any, state: BenchmarkState, idx: Sequence[int]
) -> list[dict[str, Any]]:
    payload = benchmark_service.evaluate_chunk(
        request, state.classifier, state.examples, idx, state.keys, state.metric_params
    )
    return [
        {"row": j, "seq": 0, "key": state.keys[i], **payload[state.keys[i]]}
        for j, i in enumerate(idx)
    ]


def _benchmark_merge(
    request: Any, run_id: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]
) -> Any:
    from pathlib import Path

    mparams = meta["metric_params"]
    items = [{k: v for k, v in r.items() if k != "key"} for r in records]
    result = benchmark_service.summarise(request, run_id or "", items, mparams)
    result.params = {**request.spec(), "metric_params": mparams, "n_examples": meta["n_rows"]}
    if request.output is not None:
        from explainlm.report.benchmark import write_outputs

        result.files = [str(p) for p in write_outputs(result, Path(request.output))]
    return result


JOBS.add(
    "benchmark",
    DatasetJob(
        "benchmark",
        benchmark_service.BenchmarkRequest,
        lambda request: request.chunk_size,
        _benchmark_load,
        _benchmark_compute,
        _benchmark_merge,
        ("key", "id"),
        inputs="examples",
        describe=_benchmark_describe,
        item_kind=benchmark_service.ITEM_KIND,
        plan_model=lambda state: state.classifier,
    ),
)


def _add_audits() -> None:
    from explainlm.services import audit, audit_jobs

    for request in (
        audit.FairnessAuditRequest,
        audit.CounterfactualAuditRequest,
        audit.LMBiasAuditRequest,
        audit.BiosAuditRequest,
    ):
        job = DatasetJob(request.command, request, lambda _request: None, audit_jobs.load,
                         audit_jobs.compute, audit_jobs.merge, ("key",), inputs="examples",
                         describe=audit_jobs.describe, item_kind=audit_jobs.ITEM_KIND,
                         item=audit_jobs.store_item, check=audit_jobs.check,
                         input_paths=audit_jobs.input_paths, finish=audit_jobs.finish)  # fmt: skip
        JOBS.add(request.command, job)


_add_audits()


def check_cluster_request(request: ServiceRequest) -> DatasetJob:
    """The job kind of ``request``, refusing what a cluster backend does not do (no model needed)."""
    job = JOBS[request.command]
    if getattr(request, "faithfulness", False):
        raise UserError(
            "--faithfulness is not available with --backend ray yet: run `explainlm benchmark` "
            "(which also runs on ray) to score faithfulness over a dataset"
        )
    if getattr(request, "resume", None):
        raise UserError("with --backend ray, --resume RUN_ID resumes the Ray job")
    if job.check is not None:
        job.check(request)
    return job


def record_payload(record: dict[str, Any]) -> str:
    """A record as stored in the result dataset: JSON, which round-trips every float exactly."""
    return json.dumps(record, allow_nan=True)


def cluster_backends() -> dict[str, Any]:
    """The installed cluster backends by name (``explainlm.backends`` entry points)."""
    return {e.name: e for e in entry_points(group="explainlm.backends")}


def run(request: ServiceRequest, ctx: ServiceContext, options: BackendOptions) -> Any:
    """Run ``request`` on ``options.backend``: the service itself locally, else the backend.

    A cluster backend returns a result with ``run_id``, ``to_json_doc()`` and ``load()`` (the
    service's own result type, merged from the result dataset).
    """
    if options.backend == "local":
        from explainlm.services import SERVICES

        return SERVICES[request.command].run(request, ctx)
    backend = cluster_backends().get(options.backend)
    if backend is None:
        raise UserError(
            f"--backend {options.backend} is not installed: pip install 'explainlm[{options.backend}]'"
        )
    return backend.load()(request, ctx, options)
