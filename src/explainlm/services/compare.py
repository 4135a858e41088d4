"""Compare: what quantization and pruning do to accuracy and explanations (``explainlm compare``).

One reference model, any number of variants (``int8``, ``rtn4:g32``, ``magnitude:0.5``, …; see
:mod:`explainlm.compression.spec`), one labelled dataset, some explanation methods. The result
holds, per variant, accuracy and agreement with the reference (Wilson CIs, McNemar), speed
(interleaved rounds), size, explanation drift (Spearman, Kendall, top-k and sign agreement, with
bootstrap CIs), the change in faithfulness (paired Wilcoxon tests), and the methods ranked by how
well their explanations survive. Each chunk of work is stored as it finishes, so ``resume=RUN_ID``
continues an interrupted run.

>>> req = CompareRequest(reference="minilm-sst2", variants=["rtn4", "magnitude:0.5"])
>>> req.variants, req.methods
(['rtn4:g32:asym', 'magnitude:0.5'], ['occlusion', 'integrated_gradients', 'kernel_shap'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.services.base import ServiceContext
from explainlm.services.compare_request import DEFAULT_METHODS, CompareRequest

__all__ = [
    "DEFAULT_METHODS",
    "CompareRequest",
    "CompareResult",
    "json_clean",
    "load_result",
    "run",
    "summarize_stored",
]

ITEM_KIND = "compare"
RESULT_KIND = "compare_result"


def json_clean(value: Any) -> Any:
    """NaN and infinities become ``null``; tuples become lists (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    return value


@dataclass
class CompareResult:
    """The comparison document (``to_json_doc``) and its per-text drift rows (``to_pandas``)."""

    run_id: str | None
    document: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json_doc(self) -> dict[str, Any]:
        return json_clean({"run_id": self.run_id, **self.document})

    @classmethod
    def from_json_doc(
        cls, doc: dict[str, Any], rows: list[dict[str, Any]] | None = None
    ) -> CompareResult:
        body = {k: v for k, v in doc.items() if k != "run_id"}
        return cls(doc.get("run_id"), body, list(rows or []))

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows)

    def write_html(self, path: str | Path) -> Path:
        from explainlm.compression.report import compare_report

        return compare_report(self.to_json_doc(), path)

    def write(self, folder: str | Path) -> list[Path]:
        """``compare.json``, ``drift.parquet``, ``drift.csv`` and ``report.html`` in ``folder``."""
        import json

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(self.to_json_doc(), indent=2))
        frame = self.to_pandas()
        frame.to_parquet(out / "drift.parquet", index=False)
        frame.to_csv(out / "drift.csv", index=False)
        html = self.write_html(out / "report.html")
        return [out / "compare.json", out / "drift.parquet", out / "drift.csv", html]


# ----------------------------------------------------------------------------------- running
def _examples(request: CompareRequest) -> tuple[list[str], list[str]]:
    from explainlm.datasets import load_dataset

    examples = load_dataset(
        request.dataset,
        split=request.split,
        data_dir=request.data_dir,
        limit=request.limit,
        text_column=request.text_column,
        label_column=request.label_column,
    )
    if not examples:
        raise UserError(f"dataset {request.dataset!r} has no examples")
    return [e.text for e in examples], [str(e.label) for e in examples]


def _calibration(
    request: CompareRequest, ref: Any, texts: list[str], gold: list[str] | None
) -> tuple[list[str], list[str] | None, str | None] | None:
    """Texts (and gold labels, for sequence classifiers) that score head importance."""
    from explainlm.compression.spec import parse_variant

    specs = [parse_variant(v) for v in request.variants]
    heads = [s for s in specs if s.kind == "heads"]
    if not heads:
        return None
    if request.calibration_split:
        calib_req = request.model_copy(
            update={"split": request.calibration_split, "limit": max(s.calibration for s in heads)}
        )
        texts, labels = _examples(calib_req)
        gold = labels if all(lab in ref.labels for lab in labels) else None
    labels_ok = ref.task == "sequence_classifier" and gold is not None
    return texts, (gold if labels_ok else None), getattr(ref, "template", None)


def _environment(ref: Any) -> dict[str, Any]:
    import os
    import platform
    from datetime import datetime, timezone

    import torch

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": str(ref.wrapper.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }


def _resume(request: CompareRequest, ctx: ServiceContext) -> tuple[str, dict[str, Any]]:
    if ctx.store is None:
        raise UserError("resume needs the run store")
    rec = ctx.store.get_run(request.resume or "")
    if rec.command != CompareRequest.command:
        raise UserError(f"run {rec.run_id} is a {rec.command} run, not a compare run")
    mine = {k: v for k, v in request.spec().items() if k != "resume"}
    for key, value in mine.items():
        if key in rec.params and rec.params[key] != value:
            raise UserError(
                f"cannot resume {rec.run_id}: its {key} was {rec.params[key]!r}, now {value!r}"
            )
    return rec.run_id, ctx.store.get_items(rec.run_id, ITEM_KIND)


def _gold(
    request: CompareRequest, ref: Any, gold_labels: list[str]
) -> tuple[list[str] | None, list[str]]:
    """The gold labels to score accuracy with (None when they are not the model's labels), and
    the note saying so."""
    if all(g in ref.labels for g in gold_labels):
        return gold_labels, []
    if request.target_label == "gold":
        raise UserError(f"gold labels {sorted(set(gold_labels))} are not the model's {ref.labels}")
    return None, [f"gold labels are not the model's labels ({', '.join(ref.labels)}): no accuracy"]


def _config(request: CompareRequest, calibration: Any) -> Any:
    from explainlm.compression.compare import CompareConfig

    return CompareConfig(
        methods=list(request.methods),
        metrics=list(request.metrics),
        method_params=dict(request.method_params),
        target_label=request.target_label,
        top_k=request.top_k,
        chunk_size=request.chunk_size,
        rounds=request.rounds,
        timing_texts=request.timing_texts,
        max_batch_tokens=request.max_batch_tokens,
        calibration=calibration,
    )


def _header(
    request: CompareRequest,
    n_texts: int,
    *,
    environment: dict[str, Any],
    notes: list[str],
    task: Any = None,
) -> dict[str, Any]:
    """The comparison document's description of the run (the summary follows it)."""
    return {
        "kind": "compare",
        "reference_model": request.reference,
        **({"task": task} if task is not None else {}),
        "dataset": {"name": request.dataset, "split": request.split, "n": n_texts},
        "methods": list(request.methods),
        "metrics": list(request.metrics),
        "target_label": request.target_label,
        "top_k": request.top_k,
        "environment": environment,
        "notes": notes,
    }


def _run_summary(request: CompareRequest, doc: dict[str, Any]) -> dict[str, Any]:
    """What the run store shows of a finished comparison."""
    return {
        "variants": len(request.variants),
        "agreement": {v["spec"]: v["predictions"]["agreement"]["value"] for v in doc["variants"]},
        "ranking": [r["method"] for r in doc["ranking"]],
    }


def run(request: CompareRequest, ctx: ServiceContext) -> CompareResult:
    """Compare the reference with every variant (see the module docstring)."""
    from explainlm.compression.compare import run_comparison
    from explainlm.compression.summary import summarize

    texts, gold_labels = _examples(request)
    ref = ctx.models.task(request.reference, request.task, **request.task_options())
    if not hasattr(ref, "labels"):
        raise UserError(f"compare needs a classifier; {request.reference} is a {ref.task}")
    gold, notes = _gold(request, ref, gold_labels)
    config = _config(request, _calibration(request, ref, texts, gold))
    done: dict[str, Any] = {}
    run_id = None
    if request.resume:
        run_id, stored = _resume(request, ctx)
        done.update(stored)
    extra = {"n_texts": len(texts)}
    recording = ctx.recorded_run(request, model=request.reference, resume=run_id, extra=extra)

    with ctx.models.lock(request.reference), recording as rec:

        def save(key: str, payload: Any) -> None:
            if ctx.store is not None:
                ctx.store.put_items(rec.run_id, ITEM_KIND, {key: json_clean(payload)})

        raw = run_comparison(
            ref, request.variants, texts, gold, config, done=done, save=save, progress=ctx.progress
        )
        summary, rows = summarize(raw, gold, request.top_k)
        head = _header(
            request, len(texts), environment=_environment(ref), notes=notes, task=ref.describe()
        )
        result = CompareResult(rec.run_id, {**head, **summary}, rows)
        if ctx.store is not None:
            ctx.store.put_items(
                rec.run_id, RESULT_KIND, {"result": result.to_json_doc(), "rows": json_clean(rows)}
            )
        rec.summary = _run_summary(request, result.document)
    return result


def load_result(store: Any, run_id: str) -> CompareResult:
    """A finished compare run from the store."""
    rec = store.get_run(run_id)
    items = store.get_items(rec.run_id, RESULT_KIND)
    if "result" not in items:
        raise UserError(f"run {rec.run_id} has no compare result (status: {rec.status})")
    return CompareResult.from_json_doc(items["result"], items.get("rows"))


def summarize_stored(store: Any, run_id: str) -> CompareResult:
    """The result of a compare run from what it stored so far: the finished result, or for a running
    or interrupted run, the summary over the variants whose every chunk is stored (no models load;
    ``notes`` lists the variants still missing)."""
    from explainlm.compression.compare import _merge, chunks
    from explainlm.compression.summary import summarize

    rec = store.get_run(run_id)
    done = store.get_items(rec.run_id, RESULT_KIND)
    if "result" in done:
        return CompareResult.from_json_doc(done["result"], done.get("rows"))
    params = {k: v for k, v in rec.params.items() if k in CompareRequest.model_fields}
    request = CompareRequest.model_validate(params)
    items = store.get_items(rec.run_id, ITEM_KIND)
    texts, gold = _examples(request)
    spans = chunks(len(texts), request.chunk_size)
    ref_keys = [f"reference/chunk{i:05d}" for i in range(len(spans))]
    if not all(k in items for k in ref_keys):
        raise UserError(f"run {rec.run_id} has not finished its reference pass yet")
    ref = _merge([items[k] for k in ref_keys])
    finished, missing = {}, []
    for name in request.variants:
        keys = [f"{name}/chunk{i:05d}" for i in range(len(spans))]
        if all(k in items for k in keys) and f"{name}/meta" in items:
            finished[name] = {"payload": _merge([items[k] for k in keys]), **items[f"{name}/meta"]}
        else:
            missing.append(name)
    labels_ok = all(g in ref["explained"] or g in ref["probs"][0] for g in gold)
    doc, rows = summarize(
        {"reference": ref, "variants": finished, "order": list(finished)},
        gold if labels_ok else None,
        request.top_k,
    )
    notes = (
        [f"partial result of a {rec.status} run: not yet run: {', '.join(missing)}"]
        if missing
        else []
    )
    environment = {"date": rec.created_at, "load_average": [float("nan")] * 3}
    doc = {**_header(request, len(texts), environment=environment, notes=notes), **doc}
    return CompareResult(rec.run_id, doc, rows)
