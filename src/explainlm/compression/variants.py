"""Build a compressed variant of any loaded model, reproducibly, cached on disk.

:func:`build_variant` takes a reference task (a classifier from :func:`explainlm.models.load_model`)
and a spec (see :mod:`explainlm.compression.spec`) and returns a :class:`Variant`: the same task
(labels, template, verbalizers, calibration) around a modified copy of the model, plus what was
done to it (tensors changed, sparsity, bits per weight, sizes). The reference is never modified.

Weight-editing variants (``rtn*``, ``magnitude``, ``random``, ``heads``) are cached under
``EXPLAINLM_CACHE/variants/<model fingerprint>/<spec>/``: the changed tensors (safetensors) and a
``variant.json``. The fingerprint hashes the reference's weights and config, so a retrained model
never reuses a stale variant. ``bf16``/``fp16`` (a cast) and ``int8`` (torch's own quantizer) are
rebuilt on each load: both are deterministic and take well under a second.

>>> from explainlm.models import load_model
>>> ref = load_model("/work/models/minilm-sst2")                      # doctest: +SKIP
>>> v = build_variant(ref, "rtn4:g32")                                 # doctest: +SKIP
>>> v.task.predict(["a gorgeous film"])[0].label, v.info["bits_per_weight"]  # doctest: +SKIP
('positive', 5.0)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explainlm.compression.built_variant import Variant
from explainlm.compression.prune import heads_to_prune, magnitude_prune, prune_heads, random_prune
from explainlm.compression.quantize import (
    cast_floats,
    dynamic_int8,
    rtn_bits_per_weight,
    rtn_dequantize,
    serialized_bytes,
    unique_tensors,
)
from explainlm.compression.spec import VariantSpec, parse_variant
from explainlm.errors import UserError
from explainlm.paths import cache_dir

CACHE_FORMAT = 1
CACHED_KINDS = ("rtn", "magnitude", "random", "heads")


# ------------------------------------------------------------------------------ targets
def _block_modules(model: nn.Module) -> set[int] | None:
    from explainlm.internals.hooks import architecture

    try:
        arch = architecture(model)
    except UserError:
        return None
    return {id(m) for layer in arch.layers for m in layer.modules()}


def target_modules(model: nn.Module, scope: str = "blocks") -> dict[str, nn.Module]:
    """The modules a weight-only variant edits: ``nn.Linear`` layers inside the transformer blocks
    (``blocks``), or also the token embeddings and every other linear layer (``all``)."""
    inside = _block_modules(model)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    out: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if scope == "all" and (isinstance(m, nn.Linear) or m is embed):
            out[name] = m
        elif isinstance(m, nn.Linear):
            if inside is not None and id(m) in inside:
                out[name] = m
            elif inside is None and m is not head and not name.startswith(("classifier", "score")):
                out[name] = m
    if not out:
        raise UserError(f"{type(model).__name__}: no linear layers to compress")
    return out


def _target_weights(model: nn.Module, scope: str) -> dict[str, torch.Tensor]:
    """``{parameter name: weight}`` of the target modules, tied weights once."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, m in target_modules(model, scope).items():
        w = m.weight
        if w.data_ptr() in seen:
            continue
        seen.add(w.data_ptr())
        out[f"{name}.weight" if name else "weight"] = w
    return out


# ---------------------------------------------------------------------------- fingerprint
def model_fingerprint(model: nn.Module) -> str:
    """A hash of the model's config and every weight's bytes (24 hex digits)."""
    h = hashlib.blake2b(digest_size=12)
    cfg = getattr(model, "config", None)
    h.update(
        json.dumps(cfg.to_dict() if cfg is not None else {}, sort_keys=True, default=str).encode()
    )
    for name, t in unique_tensors(model).items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def texts_fingerprint(texts: Sequence[str]) -> str:
    return hashlib.blake2b("\x00".join(texts).encode(), digest_size=6).hexdigest()


# --------------------------------------------------------------------------------- builders
def _apply_rtn(model: nn.Module, spec: VariantSpec) -> dict[str, Any]:
    weights = _target_weights(model, spec.scope)
    bits_total, count = 0.0, 0
    with torch.no_grad():
        for w in weights.values():
            w.copy_(rtn_dequantize(w, spec.bits or 8, spec.group or 0, spec.symmetric))
            cols = w.shape[-1]
            bits_total += (
                rtn_bits_per_weight(spec.bits or 8, spec.group or 0, cols, spec.symmetric)
                * w.numel()
            )
            count += w.numel()
    return {"changed": list(weights), "bits_per_weight": bits_total / max(count, 1)}


def _apply_pruning(model: nn.Module, spec: VariantSpec) -> dict[str, Any]:
    weights = _target_weights(model, spec.scope)
    ws = list(weights.values())
    amount = spec.amount or 0.0
    if spec.kind == "magnitude":
        pruned = magnitude_prune(ws, amount, global_=spec.global_threshold)
    else:
        pruned = random_prune(ws, amount, seed=spec.seed)
    total = sum(w.numel() for w in ws)
    return {"changed": list(weights), "pruned": pruned, "sparsity": pruned / max(total, 1)}


def _apply_heads(
    model: nn.Module, spec: VariantSpec, wrapper: Any, calibration: Any
) -> dict[str, Any]:
    from explainlm.internals.heads import head_importance

    texts, labels, template = calibration
    imp = head_importance(wrapper, texts, labels=labels, template=template)
    heads = heads_to_prune(imp.grid, imp.metric, spec.amount or 0.0)
    done = prune_heads(model, heads)
    names = [n for n, _ in model.named_parameters() if ".layers." in n or ".layer." in n]
    return {
        "changed": [n for n in names if "attn" in n or "attention" in n],
        "importance": {"metric": imp.metric, "grid": imp.grid, "n_texts": imp.n},
        **done,
    }


# ------------------------------------------------------------------------------------ cache
def _cache_path(fingerprint: str, spec: VariantSpec, calibration_key: str | None) -> Path:
    key = str(spec).replace(":", "_").replace("=", "-")
    if calibration_key:
        key += f"@{calibration_key}"
    return cache_dir() / "variants" / fingerprint / key


def _load_cached(path: Path, model: nn.Module) -> dict[str, Any] | None:
    meta_file = path / "variant.json"
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    if meta.get("cache_format") != CACHE_FORMAT:
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(path / "tensors.safetensors"))
    params = dict(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, t in tensors.items():
            params[name].copy_(t)
    return dict(meta["info"])


def _save_cached(path: Path, model: nn.Module, info: dict[str, Any], spec: VariantSpec) -> None:
    from safetensors.torch import save_file

    params = dict(model.named_parameters(remove_duplicate=False))
    changed = {
        n: params[n].detach().contiguous().cpu() for n in info.get("changed", []) if n in params
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=path.parent))
    try:
        save_file(changed, str(tmp / "tensors.safetensors"))
        doc = {"cache_format": CACHE_FORMAT, "spec": str(spec), "info": info}
        (tmp / "variant.json").write_text(json.dumps(doc, default=float))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------ sizes
def packed_bytes(ref: nn.Module, model: nn.Module, spec: VariantSpec, info: dict[str, Any]) -> int:
    """Bytes the variant takes in the storage format its spec describes (see docs/compression.md):
    float tensors at their dtype's width; ``int8``: 1 byte per quantized weight plus its scales;
    ``rtn``: ``bits_per_weight`` per quantized weight; pruned matrices: non-zeros plus a 1-bit
    mask when that is smaller than dense; ``heads``: the removed heads' parameters dropped."""
    tensors = unique_tensors(ref)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if spec.kind in ("bf16", "fp16"):
        return sum(
            t.numel() * (2 if t.is_floating_point() else t.element_size()) for t in tensors.values()
        )
    if spec.kind == "heads":
        return total - int(info.get("removed_params", 0)) * 4
    if spec.kind == "fp32":
        return total
    scope = "blocks" if spec.kind == "int8" else spec.scope
    targets = _target_weights(ref, scope)
    variant_params = dict(model.named_parameters(remove_duplicate=False))
    for name, w in targets.items():
        dense = w.numel() * w.element_size()
        if spec.kind == "int8":
            scales = w.shape[0] if spec.per_channel else 1
            new = w.numel() + 8 * scales  # int8 codes, float32 scale + int32 zero point
        elif spec.kind == "rtn":
            bpw = rtn_bits_per_weight(spec.bits or 8, spec.group or 0, w.shape[-1], spec.symmetric)
            new = int(-(-w.numel() * bpw // 8))
        else:
            nnz = int((variant_params[name] != 0).sum())
            new = min(dense, nnz * w.element_size() + -(-w.numel() // 8))
        total += new - dense
    return int(total)


def _wrap(task: Any, model: nn.Module, spec: VariantSpec) -> Any:
    """The reference task (labels, template, verbalizers) around ``model``; a calibrated zero-shot
    classifier is re-calibrated, since its content-free bias is a property of the model."""
    from explainlm.models import ModelWrapper

    w = task.wrapper
    wrapper = ModelWrapper(
        model,
        w.tokenizer,
        name=f"{w.name}@{spec}",
        kind=w.kind,
        chat=w.chat,
        meta=w.meta,
        device=w.device,
        max_length=w.max_length,
    )
    out = copy.copy(task)
    out.wrapper = wrapper
    if getattr(task, "calibrated", False):
        out.calibrate()
    return out


def build_variant(
    task: Any,
    spec: str | VariantSpec,
    *,
    calibration: tuple[Sequence[str], Sequence[str] | None, str | None] | None = None,
    cache: bool = True,
    fingerprint: str | None = None,
) -> Variant:
    """The variant ``spec`` of the reference ``task`` (see the module docstring).

    ``calibration``: ``(texts, labels or None, template or None)`` for the head-importance scores of
    ``heads`` variants. ``fingerprint``: the reference's :func:`model_fingerprint` when known.
    """
    spec = parse_variant(spec) if isinstance(spec, str) else spec
    if spec.kind == "llamacpp":
        from explainlm.compression.gguf_native import llamacpp_variant

        return llamacpp_variant(task, spec)
    ref = task.wrapper.model
    start = time.perf_counter()
    info: dict[str, Any] = {}
    cached = False
    if spec.kind == "fp32":
        model = ref
    else:
        model = copy.deepcopy(ref)
    if spec.kind in ("bf16", "fp16"):
        cast_floats(model, torch.bfloat16 if spec.kind == "bf16" else torch.float16)
    elif spec.kind == "int8":
        if task.wrapper.device.type != "cpu":
            raise UserError("int8 dynamic quantization runs on the CPU only (torch's kernels)")
        names = list(target_modules(model, "blocks"))
        dynamic_int8(model, names, per_channel=spec.per_channel)
        info["quantized_modules"] = len(names)
    elif spec.kind in CACHED_KINDS:
        calib_key = None
        if spec.kind == "heads":
            if not calibration or not calibration[0]:
                raise UserError("a heads variant needs calibration texts for head importance")
            texts = list(calibration[0])[: spec.calibration]
            labels = None if calibration[1] is None else list(calibration[1])[: spec.calibration]
            calibration = (texts, labels, calibration[2])
            calib_key = texts_fingerprint([*texts, *(labels or [])])
        path = _cache_path(fingerprint or model_fingerprint(ref), spec, calib_key)
        loaded = _load_cached(path, model) if cache else None
        if loaded is not None:
            info, cached = loaded, True
        else:
            if spec.kind == "rtn":
                info = _apply_rtn(model, spec)
            elif spec.kind == "heads":
                info = _apply_heads(model, spec, task.wrapper, calibration)
            else:
                info = _apply_pruning(model, spec)
            if cache:
                _save_cached(path, model, info, spec)
        info["cache_path"] = str(path)
    changed = info.pop("changed", None)
    if changed is not None:
        info["changed_tensors"] = len(changed)
    info.update(
        spec=str(spec),
        kind=spec.kind,
        family=spec.family,
        level=spec.level,
        cached=cached,
        build_seconds=time.perf_counter() - start,
        packed_bytes=packed_bytes(ref, model, spec, {**info}),
        reference_bytes=packed_bytes(ref, ref, parse_variant("fp32"), {}),
        runtime_bytes=serialized_bytes(model),
    )
    if spec.kind == "fp32":
        return Variant(spec, task, info)
    return Variant(spec, _wrap(task, model, spec), info, gradients=spec.kind != "int8")
