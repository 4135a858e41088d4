"""Explain a GGUF model as llama.cpp runs it: its quantized kernels, through ``llama-cpp-python``.

:class:`LlamaCppZeroShot` is the reference zero-shot classifier (same tokenizer, template,
verbalizers and calibration) whose class scores come from llama.cpp evaluating the GGUF file
(the optional extra ``gguf-native``: ``pip install explainlm[gguf-native]``). Token ids come from
the Hugging Face tokenizer, so both runtimes see exactly the same input; only the arithmetic
differs. Forward-only methods work (occlusion, LIME, KernelSHAP, the random control, and
generation occlusion through the same scorer); gradient and attention methods do not.

What differs from the de-quantized torch model: the weights are the same numbers (the torch model
holds the GGUF blocks de-quantized exactly), but llama.cpp's ``Q4_1 × Q8_1`` dot products first
quantize each activation row to 8 bits in blocks of 32 (scale = block absmax / 127), and its KV
cache holds keys and values as float16. :func:`simulate_kernel_precision` reproduces those two
roundings in torch; the test suite uses it to justify the tolerance between the two runtimes.

Consecutive texts share their prompt prefix (template, chat markup): the KV cache of the previous
text is kept up to the first differing token, which llama.cpp computes row by row, so reuse does
not change the numbers.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.compression.built_variant import Variant
from explainlm.errors import UserError
from explainlm.models.classifiers import ZeroShotClassifier
from explainlm.models.wrapper import Batch

INSTALL_HINT = "install the optional extra: pip install 'explainlm[gguf-native]' (builds llama.cpp)"


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def gguf_path(wrapper: Any) -> Path:
    """The GGUF file a model was de-quantized from (built-in GGUF models, or ``meta["gguf_path"]``)."""
    from explainlm.models.sources import BUILTINS

    if wrapper.meta.get("gguf_path"):
        return Path(wrapper.meta["gguf_path"])
    b = BUILTINS.get(wrapper.name)
    if b is None or not b.gguf_file:
        raise UserError(
            f"{wrapper.name} was not loaded from a GGUF file: nothing for llama.cpp to run"
        )
    spec = importlib.util.find_spec(b.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the package {b.package} that carries {b.name} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / b.gguf_file


@contextmanager
def _plain_cpu_kernels() -> Iterator[None]:
    """Load models without llama.cpp's extra CPU buffer types (AMX tiles, weight repacking).

    AMX needs a permission that containers often do not grant (the first forward pass then
    crashes), and repacked weights run other kernels than the plain ``Q4_1 × Q8_1`` dot products the
    test tolerance is derived for. ``llama-cpp-python`` has no argument for it, so the default
    model parameters are patched while the model loads.
    """
    import llama_cpp.llama as module

    original = module.llama_cpp.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    module.llama_cpp.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_cpp.llama_model_default_params = original


class LlamaCppZeroShot(ZeroShotClassifier):
    """A zero-shot classifier whose forward passes run in llama.cpp (see the module docstring)."""

    def __init__(self, reference: ZeroShotClassifier, path: Path, *, n_ctx: int = 1024) -> None:
        if not llama_cpp_available():
            raise UserError(f"llama.cpp is not installed: {INSTALL_HINT}")
        from llama_cpp import Llama

        super().__init__(
            reference.wrapper,
            reference.labels,
            reference.template,
            reference.verbalizers,
            chat=reference.chat,
        )
        self.path = Path(path)
        with _plain_cpu_kernels():
            self.llm = Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_batch=n_ctx,
                n_threads=torch.get_num_threads(),
                n_threads_batch=torch.get_num_threads(),  # its default, all cores, stalls when shared
                logits_all=True,
                verbose=False,
                seed=0,
            )
        self.calls = 0
        if reference.calibrated:
            self.calibrate()

    def _logprobs(self, ids: list[int], positions: int) -> np.ndarray:
        """Log-softmax over the vocabulary at the last ``positions`` positions of ``ids``."""
        llm = self.llm
        if len(ids) > llm.n_ctx():
            raise UserError(f"{len(ids)} tokens exceed llama.cpp's context of {llm.n_ctx()}")
        kept = 0
        cached = llm.input_ids[: llm.n_tokens].tolist()
        while kept < min(len(cached), len(ids) - 1) and cached[kept] == ids[kept]:
            kept += 1
        llm.n_tokens = kept
        llm.eval(ids[kept:])
        self.calls += 1
        logits = np.asarray(llm.scores[len(ids) - positions : len(ids)], dtype=np.float64)
        top = logits.max(-1, keepdims=True)
        return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))

    def class_scores(self, batch: Batch, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if inputs_embeds is not None:
            raise UserError("llama.cpp runs forward passes only: no gradients or embeddings")
        rows = []
        for ids_row, mask_row in zip(
            batch.input_ids.tolist(), batch.attention_mask.tolist(), strict=True
        ):
            ids = [t for t, m in zip(ids_row, mask_row, strict=True) if m]
            if self.single_token:
                last = self._logprobs(ids, 1)[0]
                rows.append([float(last[v[0]]) for v in self.verbalizer_ids])
                continue
            scores = []
            for verb in self.verbalizer_ids:
                # row j predicts verbalizer token j (the row after the verbalizer is unused)
                lp = self._logprobs(ids + list(verb), len(verb) + 1)
                scores.append(float(sum(lp[j, t] for j, t in enumerate(verb))))
            rows.append(scores)
        return torch.tensor(rows, dtype=torch.float32) - self.bias

    def rows_per_item(self) -> int:
        return 1


def llamacpp_variant(task: Any, spec: Any) -> Any:
    """The ``llamacpp`` variant: the reference zero-shot task run natively by llama.cpp."""
    if not isinstance(task, ZeroShotClassifier):
        raise UserError("the llamacpp variant needs a zero-shot classifier on a GGUF causal LM")
    path = gguf_path(task.wrapper)
    native = LlamaCppZeroShot(task, path)
    size = os.path.getsize(path)
    info = {
        "spec": str(spec),
        "kind": "llamacpp",
        "family": "runtime",
        "level": None,
        "gguf": path.name,
        "packed_bytes": size,
        "runtime_bytes": size,
        "cached": False,
    }
    return Variant(spec, native, info, gradients=False)


# ------------------------------------------------------------------------ kernel precision
def q8_blocks(x: torch.Tensor, block: int = 32) -> torch.Tensor:
    """``x`` rounded as llama.cpp's ``quantize_row_q8_1`` does: per block of 32 along the last
    dimension, ``d = absmax / 127``, ``q = round(x / d)``, back to ``q·d``."""
    shape = x.shape
    v = x.reshape(-1, block).to(torch.float32)
    d = v.abs().amax(-1, keepdim=True) / 127.0
    q = torch.where(d > 0, torch.round(v / torch.where(d > 0, d, 1.0)), 0.0)
    return (q * d).reshape(shape).to(x.dtype)


@contextmanager
def simulate_kernel_precision(model: torch.nn.Module) -> Iterator[None]:
    """Inside: every ``nn.Linear`` input rounded by :func:`q8_blocks` and the key and value
    projections' outputs rounded to float16 (llama.cpp's CPU path for Q4_1 weights)."""
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and m.in_features % 32 == 0:
            handles.append(m.register_forward_pre_hook(lambda _m, a: (q8_blocks(a[0]), *a[1:])))
        if name.endswith(("k_proj", "v_proj")):
            handles.append(m.register_forward_hook(lambda _m, _a, out: out.half().float()))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
