"""Numeric precision of model passes: float32, bfloat16 and dynamic int8 variants of a model.

A *precision* names how the passes of a job run:

* ``fp32`` — the model as loaded (float32);
* ``bf16`` — bfloat16 matrix products, either with a bfloat16 **copy of the weights** (``weights``)
  or under ``torch.autocast`` over the float32 weights (``autocast``); whichever measures faster is
  used. Precision-sensitive parts stay float32: the input embeddings the gradient methods
  differentiate, the output head (class logits, verbalizer logits), softmaxes and every reduction;
* ``int8`` — dynamic int8 quantization of the linear layers (weights int8, activations quantized
  per pass; ``torch.ao.quantization.quantize_dynamic``); the output head stays float32. It has no
  backward pass: gradient methods run in the best gradient precision instead (``fp32`` or ``bf16``);
* ``auto`` — chosen per machine and model by a one-time measurement (:mod:`.autotune`).

The variants are copies made once per loaded model and kept beside it (the float32 model is never
modified, so other jobs on the same model are unaffected). :class:`PrecisionPlan` is what a job
runs with and what its results record.

>>> plan = PrecisionPlan(forward="int8", backward="bf16", bf16_mode="weights", requested="auto")
>>> plan.label("forward"), plan.label("backward")
('int8', 'bf16')
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from explainlm.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "int8")
KINDS = ("fp32", "bf16", "int8")
BF16_MODES = ("weights", "autocast")
GRADIENT_KINDS = ("fp32", "bf16")  # int8 has no backward


@dataclass(frozen=True)
class PrecisionPlan:
    """The precision of a job's passes: ``forward`` (no gradient: prediction, perturbations) and
    ``backward`` (gradient methods), the bf16 mode, what was asked for, and why."""

    forward: str = "fp32"
    backward: str = "fp32"
    bf16_mode: str = "weights"
    requested: str = "fp32"
    max_batch_tokens: int | None = None  # measured best pass size of gradient passes (auto)
    forward_batch_tokens: int | None = None  # … and of forward passes
    # measured fixed cost of one forward pass, in tokens of the forward precision (auto): the
    # engine reuses KV-cached prefixes only where that beats full forwards (engine/prefix.py)
    pass_overhead_tokens: float | None = None
    source: str = "requested"  # requested | measured | cached | default
    reason: str = ""

    def __post_init__(self) -> None:
        if self.forward not in KINDS:
            raise UserError(f"forward precision must be one of {', '.join(KINDS)}")
        if self.backward not in GRADIENT_KINDS:
            raise UserError(f"gradient precision must be one of {', '.join(GRADIENT_KINDS)}")
        if self.bf16_mode not in BF16_MODES:
            raise UserError(f"bf16 mode must be one of {', '.join(BF16_MODES)}")

    def label(self, kind: str) -> str:
        """The precision of ``kind`` passes (``forward`` or ``backward``) as recorded on results."""
        return self.forward if kind == "forward" else self.backward

    def mode(self, kind: str) -> str:
        """``fp32``, ``int8``, ``bf16-weights`` or ``bf16-autocast``."""
        p = self.label(kind)
        return f"bf16-{self.bf16_mode}" if p == "bf16" else p

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def fixed(cls, precision: str, *, bf16_mode: str = "weights") -> PrecisionPlan:
        """A plan for an explicit precision (``int8``: gradients in float32)."""
        check_precision(precision)
        if precision == "auto":
            raise ValueError("auto is resolved by explainlm.models.autotune.resolve_precision")
        backward = "fp32" if precision == "int8" else precision
        return cls(precision, backward, bf16_mode, precision, reason="as requested")


FP32 = PrecisionPlan()


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a one-line :class:`UserError`."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


# ----------------------------------------------------------------------------------- variants
def head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The output heads kept in float32: the LM head, a sequence classifier's head."""
    heads: dict[str, nn.Module] = {}
    names = {id(m): n for n, m in model.named_modules()}
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None and id(out) in names:
        heads[names[id(out)]] = out
    for attr in ("classifier", "score"):
        m = getattr(model, attr, None)
        if isinstance(m, nn.Module) and id(m) in names:
            heads[names[id(m)]] = m
    return heads


def _float_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def _float_heads(variant: nn.Module, original: nn.Module) -> None:
    """Give a lower-precision variant float32 output heads: copies of the original's parameters
    (untied from the input embeddings), fed float32 hidden states by a pre-hook."""
    originals = dict(original.named_modules())
    for name, head in head_modules(variant).items():
        src = originals[name]
        for sub_name, sub in head.named_modules():
            src_sub = src.get_submodule(sub_name) if sub_name else src
            for pname, _ in list(sub.named_parameters(recurse=False)):
                ref = getattr(src_sub, pname).detach().clone().float()
                setattr(sub, pname, nn.Parameter(ref, requires_grad=False))
        head.register_forward_pre_hook(_float_inputs)


def build_variant(model: nn.Module, kind: str) -> nn.Module:
    """A copy of ``model`` in bfloat16 (``bf16``) or with dynamic int8 linear layers (``int8``);
    the output heads stay float32. ``model`` itself is not modified."""
    if kind == "bf16":
        variant = copy.deepcopy(model).to(torch.bfloat16)
        _float_heads(variant, model)
        return variant.eval()
    if kind == "int8":
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        variant = copy.deepcopy(model)
        heads = tuple(head_modules(variant))
        spec = {
            name: default_dynamic_qconfig
            for name, m in variant.named_modules()
            if isinstance(m, nn.Linear)
            and not any(name == h or name.startswith(h + ".") for h in heads)
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eager-mode quantization's deprecation notice
            return quantize_dynamic(variant, spec, dtype=torch.qint8).eval()
    raise ValueError(f"no {kind} variant")


def variant_wrapper(wrapper: Any, kind: str) -> Any:
    """The model wrapper whose model is the ``kind`` variant (made once, kept on ``wrapper``)."""
    if kind == "fp32":
        return wrapper
    if kind == "int8" and wrapper.device.type != "cpu":
        raise UserError("int8 precision (dynamic quantization) runs on CPU only; use bf16 on a GPU")
    cache = wrapper.__dict__.setdefault("_precision_variants", {})
    if kind not in cache:
        v = copy.copy(wrapper)
        v.__dict__.pop("_precision_variants", None)
        v.model = build_variant(wrapper.model, kind)
        cache[kind] = v
    return cache[kind]


def variant_task(task: Any, kind: str) -> Any:
    """``task`` (a classifier or generator) running on the ``kind`` variant of its model."""
    if kind == "fp32":
        return task
    v = copy.copy(task)
    v.wrapper = variant_wrapper(task.wrapper, kind)
    return v


def model_kind(plan: PrecisionPlan, kind: str) -> str:
    """Which model copy runs ``kind`` passes: ``fp32`` (also under bf16 autocast), ``bf16``, ``int8``."""
    p = plan.label(kind)
    return "fp32" if p == "bf16" and plan.bf16_mode == "autocast" else p


@contextlib.contextmanager
def pass_context(plan: PrecisionPlan, kind: str, device: torch.device) -> Iterator[None]:
    """Around one pass: bfloat16 autocast when the plan says so; nothing otherwise."""
    if plan.label(kind) == "bf16" and plan.bf16_mode == "autocast":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


# ------------------------------------------------------------------------------- close calls
CLOSE_CALL = 0.05  # top-two class probabilities closer than this: the label is decided in fp32


def close_calls(scores: torch.Tensor) -> list[int]:
    """Rows whose two most probable classes are within :data:`CLOSE_CALL` of each other."""
    if scores.shape[-1] < 2 or scores.shape[0] == 0:
        return []
    top = torch.softmax(scores.float(), -1).topk(2, dim=-1).values
    return ((top[:, 0] - top[:, 1]) < CLOSE_CALL).nonzero().flatten().tolist()


def settles_close_calls(plan: PrecisionPlan) -> bool:
    """True when ``auto`` chose bf16/int8 forward passes (their close calls go to float32)."""
    return plan.requested == "auto" and plan.forward != "fp32"


def settle_close_calls(
    plan: PrecisionPlan, scores: torch.Tensor, rescore: Any
) -> tuple[torch.Tensor, list[int]]:
    """Under ``auto`` with bf16/int8 forward passes, the close calls' scores from ``rescore(rows)``
    (float32 passes): a reduced precision, admitted for moving class probabilities by at most
    ~0.01, must not decide a label that float32 would decide otherwise. Returns the scores and
    the rows re-scored. Explicit ``bf16``/``int8`` requests keep their own scores."""
    if not settles_close_calls(plan):
        return scores, []
    rows = close_calls(scores)
    if rows:
        scores = scores.clone()
        scores[rows] = rescore(rows).to(scores.dtype).to(scores.device)
    return scores, rows
