"""Internals: look inside the model (``explainlm lens | patch | probe | heads | activations``).

One request per analysis; :func:`run` dispatches on the request's type. Each run is recorded in the
store (results under ``items``) and can write a self-contained HTML heat map.

>>> PatchRequest(clean="The Eiffel Tower is in", target=" Paris", positions="0,-1").positions
[0, -1]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from explainlm.errors import UserError
from explainlm.results import json_safe
from explainlm.services.base import ServiceContext, ServiceRequest
from explainlm.services.common import BudgetOptions, CsvList, Limit, ModelOptions


class LensRequest(ModelOptions, ServiceRequest):
    """``explainlm lens``: what each layer would predict next, at every position."""

    command: ClassVar[str] = "lens"
    path_fields: ClassVar[tuple[str, ...]] = ("html",)
    prompt: str = Field(description="The prompt (raw text, no chat markup).")
    top_k: int = Field(5, ge=1, description="Top tokens per layer and position.")
    target: str | None = Field(None, description="Token to track (e.g. ' Paris').")
    html: str | None = Field(None, description="Write an HTML heat map here.")


class PatchRequest(ModelOptions, BudgetOptions, ServiceRequest):
    """``explainlm patch``: activation patching / causal tracing."""

    command: ClassVar[str] = "patch"
    path_fields: ClassVar[tuple[str, ...]] = ("html", "figure")
    clean: str = Field(description="The clean prompt.")
    target: str = Field(description="Target next token (e.g. ' Paris').")
    corrupt: str | None = Field(None, description="Corrupted prompt, same token length.")
    subject: str | None = Field(None, description="Noise these words instead (ROME).")
    component: str = Field("resid", description="resid | attn | mlp")
    metric: str = Field("prob", description="prob | logit_diff")
    foil: str | None = Field(None, description="Foil token for logit_diff.")
    window: int = Field(1, description="Layers patched together around each layer.")
    noise: float = Field(3.0, description="Noise scale in embedding stds.")
    seed: int = Field(0, description="Noise seed.")
    positions: list[int] | None = Field(None, description="Only these token positions.")
    figure: str | None = Field(None, description="Save the grid as PNG/SVG here.")
    html: str | None = Field(None, description="Write an HTML heat map here.")

    @field_validator("window")
    @classmethod
    def _window(cls, v: int) -> int:
        if v < 1:
            raise UserError(f"--window must be at least 1, got {v}")
        return v

    @field_validator("positions", mode="before")
    @classmethod
    def _positions(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        try:
            return [int(x) for x in v.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--positions takes comma-separated integers, got {v!r}") from None


class _DatasetRequest(ModelOptions, ServiceRequest):
    """A labelled or unlabelled text file the analysis reads."""

    dataset: str = Field(description="TSV/CSV/JSONL file.")
    text_column: str = Field("text", description="Text column of the dataset.")
    limit: Limit = Field(None, description="Only the first N rows.")
    template: str | None = Field(None, description="Wrap each text: a template with {text}.")
    html: str | None = Field(None, description="Write an HTML heat map here.")

    def table(self, label_column: str | None) -> Any:
        from explainlm.datasets import read_table

        return read_table(
            self.dataset, text_column=self.text_column, label_column=label_column, limit=self.limit
        )


class ProbeRequest(_DatasetRequest):
    """``explainlm probe``: linear probes per layer with CIs and a control task."""

    command: ClassVar[str] = "probe"
    path_fields: ClassVar[tuple[str, ...]] = ("dataset", "html")
    label_column: str = Field(description="Label column of the dataset.")
    pool: str | None = Field(None, description="mean | last | first (default by model kind).")
    folds: int = Field(5, description="Cross-validation folds.")
    seed: int = Field(0, description="Seed of folds, control labels, bootstrap.")
    max_batch_tokens: int = Field(4096, ge=16)


class HeadsRequest(_DatasetRequest):
    """``explainlm heads``: the metric change when each attention head is ablated."""

    command: ClassVar[str] = "heads"
    path_fields: ClassVar[tuple[str, ...]] = ("dataset", "html")
    label_column: str | None = Field(None, description="Gold labels (classifiers).")
    limit: Limit = 50
    ablation: str = Field("zero", description="zero | mean")
    max_batch_tokens: int = Field(2048, ge=16)


class ActivationsRequest(_DatasetRequest):
    """``explainlm activations``: pooled activations to the TensorBoard projector."""

    command: ClassVar[str] = "activations"
    path_fields: ClassVar[tuple[str, ...]] = ("dataset", "html", "export_dir")
    export_format: Literal["tensorboard"] = "tensorboard"
    export_dir: str = Field(description="Folder to write the export to.")
    label_column: str | None = Field(None, description="Labels for the metadata.")
    points: CsvList = Field(default_factory=lambda: ["embed", "layers.*.resid_post"])
    pool: str | None = Field(None, description="mean | last | first")
    probe: bool = Field(False, description="Also write probe curves (needs labels).")
    max_batch_tokens: int = Field(4096, ge=16)

    @field_validator("export_format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if v != "tensorboard":
            raise UserError(f"unknown export format {v!r}; use tensorboard")
        return v

    @model_validator(mode="after")
    def _needs_labels(self) -> ActivationsRequest:
        if self.probe and not self.label_column:
            raise UserError("--probe needs --label-column")
        return self


@dataclass
class InternalsResult:
    """A run of one analysis: the analysis' own result object and its JSON document."""

    run_id: str | None
    model: str
    result: Any
    doc: dict[str, Any]
    with_run: bool = True  # lens documents are the result alone (no run id, no model)
    report: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json_doc(self) -> dict[str, Any]:
        head = {"run_id": self.run_id, "model": self.model} if self.with_run else {}
        return json_safe({**head, **self.doc})


Work = Callable[[Any, Any], tuple[Any, dict[str, Any], dict[str, Any], Any]]


def _recorded(
    request: Any, ctx: ServiceContext, kind: str, work: Work, html: Any, **extra: Any
) -> InternalsResult:
    """Load the model, run ``work(wrapper, request)`` → (result, doc, summary, items) in a
    recorded run, store the items, write the HTML report (``html(result, meta)``)."""
    w = ctx.wrapper(request.model)
    with (
        ctx.models.lock(request.model),
        ctx.recorded_run(request, model=request.model, extra=extra) as run,
        ctx.progress.stage_of(kind) as progress,
    ):
        res, doc, summary, items = work(w, progress)
        if ctx.store is not None:
            ctx.store.put_items(run.run_id, kind, json_safe(items))
        out = InternalsResult(run.run_id, request.model, res, doc)
        run.summary = summary
        if request.html:
            from explainlm.report.html import write_path

            meta = {"model": request.model, "run": run.run_id}
            out.report = str(write_path(request.html, html(res, meta)))
            run.summary["report"] = out.report
    return out


def lens(request: LensRequest, ctx: ServiceContext) -> InternalsResult:
    from explainlm.internals import lens as logit_lens
    from explainlm.internals.report import lens_html

    def work(w: Any, progress: Any) -> Any:
        res = logit_lens(w, request.prompt, top_k=request.top_k, target=request.target)
        doc = res.to_json()
        summary = {"layers": len(res.layers), "tokens": len(res.tokens)}
        return res, doc, summary, {"result": doc}

    out = _recorded(request, ctx, "lens", work, lens_html)
    out.with_run = False
    return out


def patch(request: PatchRequest, ctx: ServiceContext) -> InternalsResult:
    from explainlm.internals import trace
    from explainlm.internals.report import trace_figure, trace_html

    def work(w: Any, progress: Any) -> Any:
        res = trace(
            w,
            request.clean,
            target=request.target,
            corrupt=request.corrupt,
            subject=request.subject,
            component=request.component,
            metric=request.metric,
            foil=request.foil,
            noise=request.noise,
            window=request.window,
            seed=request.seed,
            max_batch_tokens=request.max_batch_tokens,
            positions=request.positions,
            progress=progress,
        )
        doc = res.to_json()
        layer, pos, best = res.best()
        summary: dict[str, Any] = {"clean": res.clean, "corrupt": res.corrupt}
        summary["best"] = [layer, pos, best]
        if request.figure:
            summary["figure"] = str(trace_figure(res, request.figure))
        return res, doc, summary, {"result": doc}

    out = _recorded(request, ctx, "patch", work, trace_html)
    out.notes = list(out.result.notes)
    return out


def probe(request: ProbeRequest, ctx: ServiceContext) -> InternalsResult:
    from explainlm.internals import probe_model
    from explainlm.internals.report import probe_html

    table = request.table(request.label_column)

    def work(w: Any, progress: Any) -> Any:
        res, _ = probe_model(
            w,
            table.texts,
            table.labels,
            pool=request.pool,
            template=request.template,
            max_batch_tokens=request.max_batch_tokens,
            progress=progress,
            folds=request.folds,
            seed=request.seed,
        )
        best = max(range(len(res.layers)), key=lambda k: res.accuracy[k])
        summary = {"best_layer": res.layers[best], "best_accuracy": res.accuracy[best]}
        return res, res.to_json(), summary, {r["layer"]: r for r in res.rows()}

    return _recorded(request, ctx, "probe", work, probe_html, n=len(table))


def heads(request: HeadsRequest, ctx: ServiceContext) -> InternalsResult:
    from explainlm.internals import head_importance
    from explainlm.internals.report import heads_html

    table = request.table(request.label_column)

    def work(w: Any, progress: Any) -> Any:
        res = head_importance(
            w,
            table.texts,
            labels=table.labels,
            ablation=request.ablation,
            template=request.template,
            max_batch_tokens=request.max_batch_tokens,
            progress=progress,
        )
        summary = {"metric": res.metric, "base": res.base, "top": res.ranked(5)}
        return res, res.to_json(), summary, {"result": res.to_json()}

    return _recorded(request, ctx, "heads", work, heads_html, n=len(table))


def activations(request: ActivationsRequest, ctx: ServiceContext) -> InternalsResult:
    from explainlm.internals import capture, export_tensorboard
    from explainlm.internals import probe as run_probe
    from explainlm.internals.report import activations_html

    table = request.table(request.label_column)
    kept: dict[str, Any] = {}

    def work(w: Any, progress: Any) -> Any:
        pool = request.pool or ("last" if w.is_decoder else "mean")
        cache = capture(
            w,
            table.texts,
            request.points,
            template=request.template,
            pool=pool,
            max_batch_tokens=request.max_batch_tokens,
            progress=progress,
        )
        pooled = {p: cache.pooled(p, pool).numpy() for p in cache.points}
        res = None
        if request.probe:
            res = run_probe(list(pooled.values()), table.labels, layer_names=list(pooled))
        path = export_tensorboard(
            request.export_dir, pooled, labels=table.labels, texts=table.texts, probe=res
        )
        doc: dict[str, Any] = {"logdir": str(path), "points": cache.points, "n": len(table)}
        doc["pool"] = pool
        if res is not None:
            doc["probe"] = res.to_json()
        kept.update(pooled=pooled, pool=pool, probe=res, path=str(path))
        summary = {"logdir": str(path), "points": len(cache.points)}
        return cache, doc, summary, {"export": doc}

    def html(_: Any, meta: dict[str, Any]) -> str:
        k = kept
        return activations_html(k["path"], k["pooled"], len(table), k["pool"], k["probe"], meta)

    return _recorded(request, ctx, "activations", work, html, n=len(table))


SERVICES: dict[type[ServiceRequest], Callable[[Any, ServiceContext], InternalsResult]] = {
    LensRequest: lens,
    PatchRequest: patch,
    ProbeRequest: probe,
    HeadsRequest: heads,
    ActivationsRequest: activations,
}


def run(request: ServiceRequest, ctx: ServiceContext) -> InternalsResult:
    """Run the analysis the request asks for."""
    try:
        service = SERVICES[type(request)]
    except KeyError:
        raise TypeError(f"not an internals request: {type(request).__name__}") from None
    return service(request, ctx)
