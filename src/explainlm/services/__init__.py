"""The service layer: one module per job kind (see :mod:`explainlm.services.base`).

Every front-end (CLI, web app, Ray backend) runs jobs through these modules; :data:`SERVICES` lists
them by job kind, each with its request type and its ``run`` function.

>>> from explainlm.services import SERVICES
>>> SERVICES["explain"].request.__name__
'ExplainRequest'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explainlm.registry import Registry
from explainlm.services import audit, benchmark, demo, explain, generate, internals, predict, runs
from explainlm.services import case as case_service
from explainlm.services.base import (
    LocalModels,
    ModelProvider,
    ServiceContext,
    ServiceRequest,
    ServiceResult,
    build_request,
)
from explainlm.services.benchmark import BenchmarkRequest, BenchmarkResult
from explainlm.services.demo import DemoRequest, DemoResult
from explainlm.services.explain import ExplainRequest, ExplainResult
from explainlm.services.generate import GenerateRequest, GenerateResult
from explainlm.services.internals import (
    ActivationsRequest,
    HeadsRequest,
    InternalsResult,
    LensRequest,
    PatchRequest,
    ProbeRequest,
)
from explainlm.services.predict import PredictRequest, PredictResult
from explainlm.services.runs import RunExportRequest, RunShowRequest, RunsListRequest


@dataclass(frozen=True)
class Service:
    """A job kind: its request type and ``run(request, ctx) -> result``."""

    name: str
    request: type[ServiceRequest]
    run: Callable[[Any, ServiceContext], Any]
    description: str = ""


SERVICES: Registry[Service] = Registry("service")
for _name, _request, _run in (
    ("predict", PredictRequest, predict.run),
    ("explain", ExplainRequest, explain.run),
    ("generate", GenerateRequest, generate.run),
    ("benchmark", BenchmarkRequest, benchmark.run),
    ("demo", DemoRequest, demo.run),
    ("lens", LensRequest, internals.lens),
    ("patch", PatchRequest, internals.patch),
    ("probe", ProbeRequest, internals.probe),
    ("heads", HeadsRequest, internals.heads),
    ("activations", ActivationsRequest, internals.activations),
    ("runs list", RunsListRequest, runs.list_runs),
    ("runs show", RunShowRequest, runs.show_run),
    ("runs export", RunExportRequest, runs.export_run),
    ("case", case_service.CaseRequest, case_service.run),
    ("audit-fairness", audit.FairnessAuditRequest, audit.run),
    ("audit-counterfactual", audit.CounterfactualAuditRequest, audit.run),
    ("audit-lm-bias", audit.LMBiasAuditRequest, audit.run),
    ("audit-bios", audit.BiosAuditRequest, audit.run),
):
    SERVICES.add(_name, Service(_name, _request, _run, (_request.__doc__ or "").strip()))


def run(request: ServiceRequest, ctx: ServiceContext | None = None) -> Any:
    """Run any request with the service of its kind (default context: no store, local models)."""
    ctx = ctx or ServiceContext()
    for service in SERVICES.values():
        if type(request) is service.request:
            return service.run(request, ctx)
    for service in SERVICES.values():  # a front-end's subclass of a request (e.g. the web body)
        if isinstance(request, service.request):
            return service.run(request, ctx)
    raise TypeError(f"no service for {type(request).__name__}")


__all__ = [
    "SERVICES",
    "ActivationsRequest",
    "BenchmarkRequest",
    "BenchmarkResult",
    "DemoRequest",
    "DemoResult",
    "ExplainRequest",
    "ExplainResult",
    "GenerateRequest",
    "GenerateResult",
    "HeadsRequest",
    "InternalsResult",
    "LensRequest",
    "LocalModels",
    "ModelProvider",
    "PatchRequest",
    "PredictRequest",
    "PredictResult",
    "ProbeRequest",
    "RunExportRequest",
    "RunShowRequest",
    "RunsListRequest",
    "Service",
    "ServiceContext",
    "ServiceRequest",
    "ServiceResult",
    "build_request",
    "run",
]
