"""Compare a reference model with its compressed variants on a labelled dataset.

For the reference and each variant, :func:`model_pass` predicts every text, explains one label
per text with every method (by default the reference's predicted label, so both models explain
the same quantity) and scores those explanations' faithfulness on the model that produced them.
:func:`run_comparison` does this chunk by chunk through ``done``/``save`` callbacks (so a run store
can make it resumable), times each variant against the reference in interleaved rounds, and
returns everything :func:`explainlm.compression.summary.summarize` needs.

>>> from explainlm.models import load_model
>>> ref = load_model("/work/models/minilm-sst2")                                   # doctest: +SKIP
>>> cfg = CompareConfig(methods=["occlusion"], metrics=["comprehensiveness"])     # doctest: +SKIP
>>> raw = run_comparison(ref, ["rtn4:g32"], texts, gold, cfg)                     # doctest: +SKIP
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explainlm.compression.spec import VariantSpec, parse_variant
from explainlm.compression.timing import interleaved_timing
from explainlm.compression.variants import Variant, build_variant, model_fingerprint
from explainlm.errors import UserError
from explainlm.progress import Progress

GRADIENT_METHODS = frozenset({"saliency", "grad_x_input", "integrated_gradients", "smoothgrad"})
FORWARD_ONLY_METHODS = frozenset({"occlusion", "lime", "kernel_shap", "random"})
TARGET_LABELS = ("reference", "gold", "own")
FAITHFULNESS_METRICS = ("comprehensiveness", "sufficiency")


@dataclass
class CompareConfig:
    """What a comparison computes (every field is part of the stored job spec)."""

    methods: list[str]
    metrics: list[str] = field(default_factory=lambda: list(FAITHFULNESS_METRICS))
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_label: str = "reference"
    top_k: int = 5
    chunk_size: int = 16
    rounds: int = 5
    timing_texts: int = 32
    max_batch_tokens: int = 4096
    calibration: tuple[list[str], list[str] | None, str | None] | None = None

    def __post_init__(self) -> None:
        if self.target_label not in TARGET_LABELS:
            raise UserError(f"target label must be one of {', '.join(TARGET_LABELS)}")


def _supported(method: str, variant: Variant | None) -> str | None:
    """Why ``method`` cannot run on ``variant`` (None: it can)."""
    if variant is None:
        return None
    if variant.spec.kind == "llamacpp" and method not in FORWARD_ONLY_METHODS:
        return "llama.cpp runs forward passes only (no gradients, no attention maps)"
    if not variant.gradients and method in GRADIENT_METHODS:
        return (
            "no gradients through torch's int8 kernels (the quantized model is piecewise constant)"
        )
    return None


def model_pass(
    task: Any,
    texts: Sequence[str],
    explain_labels: Sequence[str] | None,
    config: CompareConfig,
    variant: Variant | None = None,
) -> dict[str, Any]:
    """Predictions, explanations (word scores) and faithfulness of one model on ``texts``.

    ``explain_labels``: the label explained for each text (``None``: the model's own prediction).
    """
    from explainlm.engine import Engine
    from explainlm.evaluation import evaluate, prepare_items
    from explainlm.methods import get_method

    start = time.perf_counter()
    preds = task.predict(list(texts), max_batch_tokens=config.max_batch_tokens)
    labels = list(explain_labels) if explain_labels is not None else [p.label for p in preds]
    engine = Engine(task, max_batch_tokens=config.max_batch_tokens)
    items = prepare_items(engine, list(texts), labels)
    out: dict[str, Any] = {
        "predicted": [p.label for p in preds],
        "probs": [p.probs for p in preds],
        "explained": labels,
        "target_value": [it.target_value for it in items],
        "words": [it.encoding.words for it in items],
        "scores": {},
        "faithfulness": {},
        "seconds": {},
        "skipped": {},
    }
    out["seconds"]["predict"] = time.perf_counter() - start
    for name in config.methods:
        reason = _supported(name, variant)
        if reason:
            out["skipped"][name] = reason
            continue
        t0 = time.perf_counter()
        method = get_method(name, **config.method_params.get(name, {}))
        try:
            explanations = method.attribute(engine, items, "word")
        except (RuntimeError, TypeError, NotImplementedError) as e:  # e.g. a dtype a method lacks
            if variant is None:
                raise
            out["skipped"][name] = f"failed on this variant: {type(e).__name__}: {e}"
            continue
        out["scores"][name] = [list(map(float, e.word_scores)) for e in explanations]
        out["seconds"][name] = time.perf_counter() - t0
        if config.metrics:
            t0 = time.perf_counter()
            res = evaluate(
                explanations,
                config.metrics,
                classifier=task,
                max_batch_tokens=config.max_batch_tokens,
                agreement=False,
            )
            per: dict[str, list[float]] = {m: [float("nan")] * len(texts) for m in config.metrics}
            for row in res.rows:
                per[row["metric"]][int(row["example"])] = float(row["value"])
            out["faithfulness"][name] = per
            out["seconds"][f"{name}:faithfulness"] = time.perf_counter() - t0
    return out


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _merge(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate the per-chunk payloads of one model."""
    merged: dict[str, Any] = {"scores": {}, "faithfulness": {}, "seconds": {}, "skipped": {}}
    for p in parts:
        for key in ("predicted", "probs", "explained", "target_value", "words"):
            merged.setdefault(key, []).extend(p[key])
        for m, s in p["scores"].items():
            merged["scores"].setdefault(m, []).extend(s)
        for m, per in p["faithfulness"].items():
            for metric, vals in per.items():
                merged["faithfulness"].setdefault(m, {}).setdefault(metric, []).extend(vals)
        for k, s in p["seconds"].items():
            merged["seconds"][k] = merged["seconds"].get(k, 0.0) + s
        merged["skipped"].update(p["skipped"])
    return merged


def _explain_labels(
    config: CompareConfig, ref: Mapping[str, Any], gold: Sequence[str] | None, a: int, b: int
) -> list[str] | None:
    if config.target_label == "reference":
        return list(ref["predicted"][a:b])
    if config.target_label == "gold":
        if gold is None:
            raise UserError("target label 'gold' needs a labelled dataset")
        return list(gold[a:b])
    return None


def run_comparison(
    reference: Any,
    variants: Sequence[str | VariantSpec],
    texts: Sequence[str],
    gold: Sequence[str] | None,
    config: CompareConfig,
    *,
    done: Mapping[str, Any] | None = None,
    save: Callable[[str, Any], None] | None = None,
    progress: Progress | None = None,
    build: Callable[..., Variant] = build_variant,
) -> dict[str, Any]:
    """Run the reference and every variant over ``texts`` (see the module docstring).

    ``done``: payloads already computed (key → payload, from an interrupted run); ``save(key,
    payload)`` is called after each chunk. Returns ``{"reference": payload, "variants": {spec:
    {"payload", "info", "timing"}}}``.
    """
    progress = progress or Progress()
    store: dict[str, Any] = dict(done or {})
    specs = [parse_variant(v) if isinstance(v, str) else v for v in variants]

    def keep(key: str, payload: Any) -> None:
        store[key] = payload
        if save is not None:
            save(key, payload)

    spans = chunks(len(texts), config.chunk_size)
    started = time.perf_counter()
    progress.start("reference", len(texts))
    for i, (a, b) in enumerate(spans):
        key = f"reference/chunk{i:05d}"
        if key not in store:
            keep(key, model_pass(reference, texts[a:b], None, config))
        progress.advance(b - a)
    ref = _merge([store[f"reference/chunk{i:05d}"] for i in range(len(spans))])
    per_text = (time.perf_counter() - started) / max(len(texts), 1)
    total = len(specs) * len(texts)
    progress.start("variants", total, estimate_s=per_text * total * 1.2 or None)
    fingerprint: str | None = None
    results: dict[str, Any] = {}
    for spec in specs:
        name = str(spec)
        keys = [f"{name}/chunk{i:05d}" for i in range(len(spans))]
        if all(k in store for k in keys) and f"{name}/meta" in store:
            progress.advance(len(texts), message=f"{name} (stored)")
            results[name] = {"payload": _merge([store[k] for k in keys]), **store[f"{name}/meta"]}
            continue
        if fingerprint is None and spec.kind not in ("bf16", "fp16", "int8", "llamacpp", "fp32"):
            fingerprint = model_fingerprint(reference.wrapper.model)
        progress.advance(0, message=f"building {name}")
        variant = build(reference, spec, calibration=config.calibration, fingerprint=fingerprint)
        for i, (a, b) in enumerate(spans):
            if keys[i] not in store:
                labels = _explain_labels(config, ref, gold, a, b)
                keep(keys[i], model_pass(variant.task, texts[a:b], labels, config, variant))
            progress.advance(b - a, message=name)
        timing = interleaved_timing(
            reference, variant.task, list(texts[: config.timing_texts]), rounds=config.rounds
        )
        keep(f"{name}/meta", {"info": variant.info, "timing": timing})
        results[name] = {"payload": _merge([store[k] for k in keys]), **store[f"{name}/meta"]}
        del variant
        gc.collect()
    progress.close()
    return {"reference": ref, "variants": results, "order": [str(s) for s in specs]}
