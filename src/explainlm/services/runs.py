"""Runs: list, show and export what the run store recorded (``explainlm runs``, ``/api/runs``).

Three requests, one per operation; :func:`run` dispatches on the request's type.

>>> RunsListRequest(limit=5).limit
5
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from explainlm.errors import UserError
from explainlm.results import json_safe
from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.services.common import at_least_one

PREVIEW_TABLES = {"explain": "explanations", "predict": "predictions"}
EXPORT_FORMATS = ("json", "parquet", "csv", "html")


class RunsListRequest(ServiceRequest):
    """``explainlm runs list``: newest first."""

    command: ClassVar[str] = "runs list"
    limit: int = Field(20, description="How many (newest first).")
    offset: int = Field(0, ge=0, description="Skip this many first (paging).")
    command_name: str | None = Field(
        None, alias="command", description="Only runs of this command."
    )
    search: str | None = Field(None, description="Substring of the id, model or parameters.")
    view: Literal["full", "brief"] = Field(
        "full", description="brief: each run's first text as ``preview``, no package versions."
    )

    _positive = field_validator("limit")(at_least_one)


class RunShowRequest(ServiceRequest):
    """``explainlm runs show``: a run's record and its results."""

    command: ClassVar[str] = "runs show"
    run_id: str = Field(description="Run id (a unique prefix works).")
    view: Literal["tables", "results"] = Field(
        "tables",
        description="tables: the stored rows; results: the command's own --json shapes.",
    )


class RunExportRequest(ServiceRequest):
    """``explainlm runs export``: JSON, Parquet, CSV or a self-contained HTML report."""

    command: ClassVar[str] = "runs export"
    path_fields: ClassVar[tuple[str, ...]] = ("output",)
    run_id: str = Field(description="Run id (a unique prefix works).")
    format: Literal["json", "parquet", "csv", "html"] = "json"
    output: str | None = Field(None, description="File to write (default: RUN_ID.FORMAT).")
    destination: Literal["file", "body"] = Field(
        "file", description="body: return the export (json or html) instead of writing a file."
    )

    @field_validator("output")
    @classmethod
    def _writable(cls, v: str | None) -> str | None:
        from explainlm.services.common import check_output_file

        return check_output_file(v, "--output")

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, v: Any) -> Any:
        if v not in EXPORT_FORMATS:
            raise UserError(f"unknown export format {v!r}; use one of {', '.join(EXPORT_FORMATS)}")
        return v


class RunsDoctorRequest(ServiceRequest):
    """``explainlm runs doctor``: check the store, mark dead runs, salvage damaged copies."""

    command: ClassVar[str] = "runs doctor"
    path_fields: ClassVar[tuple[str, ...]] = ("files",)
    files: list[str] = Field(
        default_factory=list,
        description="Damaged store files to salvage (default: the copies moved aside).",
    )


def doctor(request: RunsDoctorRequest, ctx: ServiceContext) -> Any:
    """Check and repair the store (:func:`explainlm.store.doctor.doctor`); returns its report."""
    from pathlib import Path

    from explainlm.store.doctor import doctor as run_doctor

    if ctx.store is None:
        raise UserError("runs doctor needs the run store (drop --no-store)")
    for f in request.files:
        if not Path(f).exists():
            raise UserError(f"file not found: {f}")
    return run_doctor(ctx.store.path, request.files or None)


@dataclass
class RunList:
    runs: list[dict[str, Any]]
    run_id: str | None = None

    def to_json_doc(self) -> dict[str, Any]:
        return json_safe({"runs": self.runs})


@dataclass
class RunView:
    record: Any  # a RunRecord
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.record.run_id)

    def to_json_doc(self) -> dict[str, Any]:
        return json_safe({"run": self.record.to_dict(), **self.doc})


@dataclass
class RunExport:
    run_id: str
    files: list[str] = field(default_factory=list)
    body: str | None = None
    media_type: str = "application/json"
    filename: str = ""

    def to_json_doc(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "files": self.files}


def _store(ctx: ServiceContext) -> Any:
    if ctx.store is None:
        raise UserError("no run store")
    return ctx.store


def list_runs(request: RunsListRequest, ctx: ServiceContext) -> RunList:
    store = _store(ctx)
    runs = []
    for rec in store.list_runs(
        limit=request.limit,
        offset=request.offset,
        command=request.command_name or None,
        search=request.search or None,
    ):
        d = rec.to_dict()
        if request.view == "brief":
            d.pop("versions", None)
            d["preview"] = preview(store, rec)
        runs.append(d)
    return RunList(runs)


def preview(store: Any, rec: Any) -> str | None:
    """The first text (or prompt) of a run, for lists."""
    table = PREVIEW_TABLES.get(rec.command)
    if table:
        row = store.first_row(rec.run_id, table)
        return row["text"] if row else None
    if rec.command == "generate":
        first = next(iter(store.get_items(rec.run_id, "generation").values()), None)
        return first["prompt"] if first else None
    return None


def show_run(request: RunShowRequest, ctx: ServiceContext) -> RunView:
    store = _store(ctx)
    rec = store.get_run(request.run_id)
    if request.view == "tables":
        return RunView(rec, store.result_tables(rec.run_id))
    return RunView(rec, results_doc(store, rec))


def results_doc(store: Any, rec: Any) -> dict[str, Any]:
    """A run's results in its command's ``--json`` shapes (with summaries), else its tables."""
    if rec.command == "explain":
        from explainlm.report.heatmap import summary
        from explainlm.services.explain import agreement_docs

        exps = store.load_explanations(rec.run_id)
        out: dict[str, Any] = {
            "explanations": [{**e.to_json_doc(), "summary": summary(e)} for e in exps],
            "agreement": agreement_docs(exps),
        }
        if rec.summary and rec.summary.get("faithfulness"):
            out["faithfulness"] = rec.summary["faithfulness"]
        return out
    if rec.command == "generate":
        from explainlm.report.matrix import summary as gsummary

        gens = generations(store, rec.run_id)
        return {
            "prompt": gens[0].prompt if gens else None,
            "attributions": [
                {**a.to_json_doc(), "summary": gsummary(a), "continuation": a.continuation}
                for a in gens
            ],
        }
    if rec.command == "predict":
        rows = store.results(rec.run_id, "predictions")
        return {"predictions": [{k: r[k] for k in ("text", "label", "probs")} for r in rows]}
    if rec.command == "benchmark" and rec.status == "finished":
        from explainlm.services.benchmark import stored_result

        return {"benchmark": stored_result(store, rec).to_json_doc()}
    report = _study_report(store, rec)
    if report is not None:
        return {"audit" if rec.command.startswith("audit-") else "compare": report}
    return {"tables": store.result_tables(rec.run_id)}


def _study_report(store: Any, rec: Any) -> dict[str, Any] | None:
    """An audit's stored report, or a compare run's (finished, or its finished variants so far);
    None when there is none yet."""
    if rec.command.startswith("audit-"):
        report = store.get_items(rec.run_id, "audit-report").get("report")
        return None if report is None else {"run_id": rec.run_id, "model": rec.model, **report}
    if rec.command == "compare":
        from explainlm.services.compare import summarize_stored

        try:
            return summarize_stored(store, rec.run_id).to_json_doc()
        except UserError:  # the reference pass is not stored yet
            return None
    return None


def generations(store: Any, run_id: str) -> list[Any]:
    from explainlm.generation import GenerationAttribution

    items = store.get_items(run_id, "generation").values()
    return [GenerationAttribution.from_dict(d) for d in items]


def export_run(request: RunExportRequest, ctx: ServiceContext) -> RunExport:
    """Write the export to ``output`` (returning the files) or return it as a body."""
    store = _store(ctx)
    rec = store.get_run(request.run_id)
    name = f"explainlm-{rec.run_id}.{request.format}"
    if request.destination == "body":
        if request.format == "html":
            html = html_report(store, rec)
            return RunExport(
                rec.run_id, body=html, media_type="text/html; charset=utf-8", filename=name
            )
        if request.format != "json":
            raise UserError(f"unknown export format {request.format!r}; use json or html")
        doc = json_safe({"run": rec.to_dict(), **store.result_tables(rec.run_id)})
        return RunExport(rec.run_id, body=json.dumps(doc, indent=1), filename=name)
    output = request.output or f"{rec.run_id}.{request.format}"
    if request.format == "html":
        from explainlm.report.html import write_path

        return RunExport(rec.run_id, [str(write_path(output, html_report(store, rec)))])
    return RunExport(rec.run_id, [str(p) for p in store.export(rec.run_id, request.format, output)])


def html_report(store: Any, rec: Any) -> str:
    """A self-contained HTML report of an explain, generate, predict, benchmark, audit or compare
    run (all user text escaped by :mod:`explainlm.report`)."""
    from explainlm.report.html import page

    meta = {"model": rec.model, "run": rec.run_id}
    if rec.command == "explain":
        from explainlm.report.heatmap import explanations_section, faithfulness_section

        exps = store.load_explanations(rec.run_id)
        sections = [explanations_section(exps)]
        faith = (rec.summary or {}).get("faithfulness")
        if faith:
            sections.append(faithfulness_section(faith, exps))
        return page("explainlm explanations", sections, meta)
    if rec.command == "generate":
        from explainlm.report.matrix import generation_report

        return generation_report(generations(store, rec.run_id), meta)
    if rec.command == "predict":
        from explainlm.report.html import predictions_section

        preds = store.results(rec.run_id, "predictions")
        return page("explainlm predictions", [predictions_section(rec.model or "", preds)], meta)
    if rec.command == "benchmark" and rec.status == "finished":
        from explainlm.report.benchmark import html_report as benchmark_html
        from explainlm.services.benchmark import stored_result

        return benchmark_html(stored_result(store, rec))
    report = _study_report(store, rec)
    if report is not None and rec.command == "compare":
        from explainlm.compression.report import compare_html

        return compare_html(report)
    if report is not None:
        from explainlm.audits.report import audit_html

        return audit_html(report)
    raise UserError(f"no HTML report for {rec.command} runs; export it as json")


def run(request: ServiceRequest, ctx: ServiceContext) -> RunList | RunView | RunExport:
    """List, show or export, by the request's type."""
    if isinstance(request, RunsListRequest):
        return list_runs(request, ctx)
    if isinstance(request, RunShowRequest):
        return show_run(request, ctx)
    if isinstance(request, RunExportRequest):
        return export_run(request, ctx)
    raise TypeError(f"not a runs request: {type(request).__name__}")
