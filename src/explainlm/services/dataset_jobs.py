"""Dataset jobs: one job over a whole table of texts, on the local backend or a cluster backend.

A dataset job is a service request (``predict``, ``explain``, ``benchmark``) plus
:class:`BackendOptions` saying where it runs. ``backend="local"`` is the service's own ``run``;
other backends (``ray``: :mod:`explainlm.scale`) come from the ``explainlm.backends`` entry point
group, so this layer never imports a front-end.

A cluster backend runs **the same per-shard code** as the local service: a shard is exactly one of
the local run's chunks (rows ``[k * shard_rows, (k + 1) * shard_rows)``, ``shard_rows`` = the
service's chunk size), computed by :attr:`DatasetJob.compute`, which calls the function the local
service calls on that chunk. The engine packs each shard's passes under the request's token budget,
as locally, so the merged result is the local result, number for number and in the same order.

>>> JOBS["explain"].shard_rows, JOBS["predict"].shard_rows
(64, 32)
>>> BackendOptions(backend="ray", actors=2).spec()["actors"]
2
>>> BackendOptions(backend="ray", address="ray://head:10001", gpus_per_actor=0.5).gpus_per_actor
0.5
>>> BackendOptions(backend="local", actors=3)
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
from explainlm.services import explain as explain_service
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

    ``load(request, models)``: the model (as the task the service uses), once per worker;
    ``compute(request, task, texts)``: the output records of one shard, each ``{"row": i, "seq": j,
    **payload}`` with ``i`` the text's position in the shard — the service's own per-chunk code;
    ``merge(request, run_id, records)``: the service's result from all records in order.
    ``columns``: payload fields also stored as typed Parquet columns.
    """

    command: str
    request: type[ServiceRequest]
    shard_rows: int
    load: Callable[[Any, Any], Any]
    compute: Callable[[Any, Any, Sequence[str]], list[dict[str, Any]]]
    merge: Callable[[Any, str | None, Sequence[dict[str, Any]]], Any]
    columns: tuple[str, ...] = ()


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


def _explain_merge(request: Any, run_id: str | None, records: Sequence[dict[str, Any]]) -> Any:
    from explainlm.explanation import Explanation, ExplanationSet

    exps = ExplanationSet([Explanation.from_dict(r) for r in records], run_id=run_id)
    result = explain_service.ExplainResult(run_id, request.model, exps, None, request.summary)
    if request.html:
        result.report = explain_service.write_report(request, result)
    return result


def _predict_compute(request: Any, clf: Any, texts: Sequence[str]) -> list[dict[str, Any]]:
    out = predict_service.predict_texts(request, clf, texts)
    return [{"row": i, "seq": 0, **p} for i, p in enumerate(out)]


def _predict_merge(request: Any, run_id: str | None, records: Sequence[dict[str, Any]]) -> Any:
    keep = [{k: v for k, v in r.items() if k not in ("row", "seq")} for r in records]
    return predict_service.PredictResult(run_id, request.model, keep)


JOBS: Registry[DatasetJob] = Registry("dataset job")
JOBS.add(
    "explain",
    DatasetJob(
        "explain",
        explain_service.ExplainRequest,
        explain_service.CHUNK,
        _load_classifier,
        _explain_compute,
        _explain_merge,
        ("text", "method", "target", "label", "predicted", "units", "scores"),
    ),
)
JOBS.add(
    "predict",
    DatasetJob(
        "predict",
        predict_service.PredictRequest,
        predict_service.CHUNK,
        _load_task,
        _predict_compute,
        _predict_merge,
        ("text", "label"),
    ),
)


def check_cluster_request(request: ServiceRequest) -> DatasetJob:
    """The job kind of ``request``, refusing what a cluster backend does not do (no model needed)."""
    job = JOBS[request.command]
    if getattr(request, "faithfulness", False):
        raise UserError(
            "--faithfulness is not available with --backend ray yet: run `explainlm benchmark` "
            "(which also runs on ray) to score faithfulness over a dataset"
        )
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
