"""Named hook points on Hugging Face transformers, TransformerLens-style.

Every supported architecture (BERT-style encoders, Llama-style decoders) exposes the same names:

| name | tensor | where |
| --- | --- | --- |
| ``embed`` | ``[B, T, d]`` | output of the embedding block (what layer 0 reads) |
| ``layers.{i}.resid_pre`` | ``[B, T, d]`` | residual stream entering block ``i`` |
| ``layers.{i}.resid_post`` | ``[B, T, d]`` | residual stream leaving block ``i`` |
| ``layers.{i}.attn.pattern`` | ``[B, heads, T, T]`` | attention probabilities (needs eager attention) |
| ``layers.{i}.attn.z`` | ``[B, T, heads * d_head]`` | per-head attention outputs, input of the output projection |
| ``layers.{i}.attn.out`` | ``[B, T, d]`` | attention output projection (what attention adds to the stream) |
| ``layers.{i}.mlp.out`` | ``[B, T, d]`` | MLP output (what the MLP adds to the stream) |
| ``final_norm`` | ``[B, T, d]`` | output of the final norm (decoders only) |

For BERT (post-norm) ``attn.out`` and ``mlp.out`` are the dense projections *before* the residual
add and LayerNorm; ``resid_post`` is the block output after its last LayerNorm.

Hooks either read (return ``None``) or edit (return a replacement tensor) the named tensor.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("smollm2-135m")                               # doctest: +SKIP
>>> b = w.collate(w.encode(["Hello world"], chat=False))                 # doctest: +SKIP
>>> seen = {}
>>> with hooks(w, {"layers.3.mlp.out": lambda t: seen.setdefault("x", t)}):  # doctest: +SKIP
...     _ = w.forward(b)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explainlm.errors import UserError
from explainlm.models.wrapper import eager_attention

HookFn = Callable[[torch.Tensor], torch.Tensor | None]

LAYER_POINTS = ("resid_pre", "resid_post", "attn.pattern", "attn.z", "attn.out", "mlp.out")
_NAME = re.compile(
    r"^layers\.(\d+)\.(resid_pre|resid_post|attn\.pattern|attn\.z|attn\.out|mlp\.out)$"
)


@dataclass(frozen=True)
class Point:
    """Where a named tensor lives: a module, whether it is that module's input or output, and which
    element of a tuple output (``index``)."""

    module: nn.Module
    side: str  # "input" | "output"
    index: int = 0


@dataclass(frozen=True)
class Architecture:
    """The modules of one model that the hook points attach to."""

    family: str  # "llama" | "bert"
    embed: nn.Module
    layers: Sequence[nn.Module]
    final_norm: nn.Module | None
    n_heads: int
    d_head: int

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def attn_core(self, i: int) -> nn.Module:
        layer = self.layers[i]
        return layer.self_attn if self.family == "llama" else layer.attention.self

    def attn_proj(self, i: int) -> nn.Module:
        layer = self.layers[i]
        return layer.self_attn.o_proj if self.family == "llama" else layer.attention.output.dense

    def mlp_out(self, i: int) -> nn.Module:
        layer = self.layers[i]
        return layer.mlp if self.family == "llama" else layer.output.dense


def architecture(model: nn.Module) -> Architecture:
    """Find the hookable modules of a Llama-style decoder or a BERT-style encoder."""
    cfg = model.config
    base = getattr(model, "model", None)
    if base is not None and hasattr(base, "layers") and hasattr(base, "embed_tokens"):
        n_heads = int(cfg.num_attention_heads)
        d_head = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads)
        return Architecture(
            "llama", base.embed_tokens, list(base.layers), base.norm, n_heads, d_head
        )
    bert = getattr(model, getattr(model, "base_model_prefix", "bert"), None) or model
    enc = getattr(bert, "encoder", None)
    if enc is not None and hasattr(enc, "layer") and hasattr(bert, "embeddings"):
        n_heads = int(cfg.num_attention_heads)
        return Architecture(
            "bert", bert.embeddings, list(enc.layer), None, n_heads, cfg.hidden_size // n_heads
        )
    raise UserError(
        f"{type(model).__name__}: hook points support Llama-style decoders and BERT-style "
        "encoders only"
    )


def point_names(arch: Architecture) -> list[str]:
    """Every hook point name of an architecture, in forward order."""
    names = ["embed"]
    for i in range(arch.n_layers):
        names += [f"layers.{i}.{p}" for p in LAYER_POINTS]
    if arch.final_norm is not None:
        names.append("final_norm")
    return names


def resolve(arch: Architecture, name: str) -> Point:
    """The :class:`Point` behind a hook name (``UserError`` for unknown names)."""
    if name == "embed":
        return Point(arch.embed, "output")
    if name == "final_norm":
        if arch.final_norm is None:
            raise UserError("final_norm exists only for decoders")
        return Point(arch.final_norm, "output")
    m = _NAME.match(name)
    if not m:
        raise UserError(
            f"unknown hook point {name!r}; use embed, final_norm or layers.I.X with X in "
            f"{', '.join(LAYER_POINTS)}"
        )
    i, what = int(m.group(1)), m.group(2)
    if i >= arch.n_layers:
        raise UserError(f"{name}: the model has {arch.n_layers} layers (0..{arch.n_layers - 1})")
    return {
        "resid_pre": Point(arch.layers[i], "input"),
        "resid_post": Point(arch.layers[i], "output"),
        "attn.pattern": Point(arch.attn_core(i), "output", 1),
        "attn.z": Point(arch.attn_proj(i), "input"),
        "attn.out": Point(arch.attn_proj(i), "output"),
        "mlp.out": Point(arch.mlp_out(i), "output"),
    }[what]


def expand(arch: Architecture, names: Sequence[str]) -> list[str]:
    """Expand ``*`` wildcards (``layers.*.resid_post``) and ``all``; keep order, drop duplicates."""
    out: list[str] = []
    for n in names:
        if n == "all":
            out += point_names(arch)
        elif "*" in n:
            out += [n.replace("*", str(i)) for i in range(arch.n_layers)]
        else:
            out.append(n)
    for n in out:
        resolve(arch, n)
    return list(dict.fromkeys(out))


def _pick(value: Any, index: int) -> Any:
    return value[index] if isinstance(value, tuple) else value


def _put(value: Any, index: int, new: torch.Tensor) -> Any:
    if isinstance(value, tuple):
        return (*value[:index], new, *value[index + 1 :])
    return new


def _make(point: Point, fns: list[HookFn]) -> Callable[..., Any]:
    def run(t: torch.Tensor) -> torch.Tensor | None:
        changed = None
        for fn in fns:
            r = fn(t if changed is None else changed)
            if r is not None:
                changed = r
        return changed

    if point.side == "output":

        def out_hook(_m: nn.Module, _args: Any, output: Any) -> Any:
            t = _pick(output, point.index)
            if t is None:
                raise RuntimeError("attention weights missing: eager attention is needed")
            new = run(t)
            return None if new is None else _put(output, point.index, new)

        return out_hook

    def in_hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            new = run(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        new = run(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    return in_hook


@contextmanager
def hooks(
    wrapper: Any, fns: Mapping[str, HookFn | Sequence[HookFn]], *, arch: Architecture | None = None
) -> Iterator[Architecture]:
    """Attach functions to named points for the duration of the block.

    Each function gets the named tensor (batch first); returning a tensor replaces it, returning
    ``None`` leaves it as it is. Attention patterns switch the model to eager attention meanwhile.
    """
    model = wrapper.model if hasattr(wrapper, "model") else wrapper
    arch = arch or architecture(model)
    handles = []
    needs_eager = any(n.endswith("attn.pattern") for n in fns)
    with eager_attention(model, needs_eager):
        try:
            for name, fn in fns.items():
                point = resolve(arch, name)
                fn_list = [fn] if callable(fn) else list(fn)
                hook = _make(point, fn_list)
                if point.side == "output":
                    handles.append(point.module.register_forward_hook(hook))
                else:
                    handles.append(point.module.register_forward_pre_hook(hook, with_kwargs=True))
            yield arch
        finally:
            for h in handles:
                h.remove()
