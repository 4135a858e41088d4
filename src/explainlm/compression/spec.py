"""Variant specs: one short string names a compressed variant of a model, reproducibly.

Grammar: ``KIND[:ARG][:OPTION]...``, options are flags or ``key=value``:

| spec | variant |
| --- | --- |
| ``fp32`` | the reference itself (float32) |
| ``bf16``, ``fp16`` | every floating-point tensor cast to bfloat16 / float16 |
| ``int8`` | torch dynamic int8 quantization of every ``nn.Linear`` (per-tensor symmetric weights; ``int8:per_channel``: one scale per output row) |
| ``rtn4:g32`` | weight-only k-bit round-to-nearest in groups of 32 input columns (k = 2…8; ``g0`` = one group per row; ``asym`` (default) or ``sym``) |
| ``magnitude:0.5`` | unstructured magnitude pruning: the 50 % smallest-magnitude weights of each matrix set to 0 (``global``: one threshold over all matrices) |
| ``random:0.3:seed=1`` | unstructured random pruning of 30 % of each matrix's weights (seeded) |
| ``heads:0.25`` | structured pruning of the 25 % least important attention heads (head-importance scores) |
| ``llamacpp`` | the model's GGUF file run natively by llama.cpp (forward-only methods) |

Weight-only variants touch the linear layers inside the transformer blocks (``scope=blocks``, the
default); ``scope=all`` also quantizes or prunes the token embeddings and the output head.

>>> str(parse_variant("rtn4"))
'rtn4:g32:asym'
>>> str(parse_variant("random:0.3:seed=1"))
'random:0.3:seed=1'
>>> parse_variant("magnitude:1.5")
Traceback (most recent call last):
...
explainlm.errors.UserError: variant 'magnitude:1.5': the fraction must be in [0, 1), got 1.5
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from explainlm.errors import UserError

KINDS = ("fp32", "bf16", "fp16", "int8", "rtn", "magnitude", "random", "heads", "llamacpp")
SCOPES = ("blocks", "all")
FAMILIES = {
    "fp32": "reference",
    "bf16": "precision",
    "fp16": "precision",
    "int8": "quantization",
    "rtn": "quantization",
    "magnitude": "pruning",
    "random": "pruning",
    "heads": "pruning",
    "llamacpp": "runtime",
}
_RTN = re.compile(r"^rtn([2-8])$")


@dataclass(frozen=True)
class VariantSpec:
    """A parsed variant spec; ``str(spec)`` is its canonical form (the cache key)."""

    kind: str
    bits: int | None = None
    group: int | None = None
    symmetric: bool = False
    amount: float | None = None
    seed: int = 0
    scope: str = "blocks"
    per_channel: bool = False
    global_threshold: bool = False
    calibration: int = 64

    @property
    def family(self) -> str:
        """``reference``, ``precision``, ``quantization``, ``pruning`` or ``runtime``."""
        return FAMILIES[self.kind]

    @property
    def level(self) -> float:
        """How strongly the variant compresses, on one axis per family (for drift-vs-compression
        plots): bits per weight for precision and quantization, the pruned fraction for pruning."""
        if self.kind in ("fp32", "llamacpp"):
            return 32.0 if self.kind == "fp32" else float("nan")
        if self.kind in ("bf16", "fp16"):
            return 16.0
        if self.kind == "int8":
            return 8.0
        if self.kind == "rtn":
            return float(self.bits or 0)
        return float(self.amount or 0.0)

    def __str__(self) -> str:
        scope = [] if self.scope == "blocks" else [f"scope={self.scope}"]
        if self.kind == "rtn":
            parts = [f"rtn{self.bits}", f"g{self.group}", "sym" if self.symmetric else "asym"]
            return ":".join(parts + scope)
        if self.kind == "int8":
            return "int8:per_channel" if self.per_channel else "int8"
        if self.kind == "magnitude":
            glob = ["global"] if self.global_threshold else []
            return ":".join([f"magnitude:{self.amount:g}", *glob, *scope])
        if self.kind == "random":
            return ":".join([f"random:{self.amount:g}", f"seed={self.seed}", *scope])
        if self.kind == "heads":
            return f"heads:{self.amount:g}:calib={self.calibration}"
        return self.kind


def _fraction(spec: str, text: str | None) -> float:
    if text is None:
        raise UserError(f"variant {spec!r} needs a fraction, e.g. {spec.split(':')[0]}:0.5")
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"variant {spec!r}: {text!r} is not a fraction") from None
    if not 0.0 <= value < 1.0:
        raise UserError(f"variant {spec!r}: the fraction must be in [0, 1), got {value:g}")
    return value


def _int_option(spec: str, key: str, value: str, low: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise UserError(f"variant {spec!r}: {key} must be an integer, got {value!r}") from None
    if n < low:
        raise UserError(f"variant {spec!r}: {key} must be at least {low}, got {n}")
    return n


def parse_variant(spec: str) -> VariantSpec:
    """Parse a variant spec string (see the module docstring); bad specs are a :class:`UserError`."""
    text = str(spec).strip().lower()
    parts = [p.strip() for p in text.split(":")]
    if not text or any(not p for p in parts):
        raise UserError(f"empty part in variant spec {spec!r}")
    head, rest = parts[0], parts[1:]
    m = _RTN.match(head)
    kind = "rtn" if m else head
    if kind not in KINDS:
        raise UserError(
            f"unknown variant {spec!r}; known kinds: fp32, bf16, fp16, int8, rtn2…rtn8, "
            "magnitude, random, heads, llamacpp"
        )
    fields: dict[str, object] = {"kind": kind}
    if m:
        fields.update(bits=int(m.group(1)), group=32)
    if kind in ("magnitude", "random", "heads"):
        fields["amount"] = _fraction(spec, rest[0] if rest else None)
        rest = rest[1:]
    for opt in rest:
        key, _, value = opt.partition("=")
        if kind == "rtn" and re.fullmatch(r"g\d+", opt):
            fields["group"] = _int_option(spec, "group size", opt[1:], 0)
        elif kind == "rtn" and opt in ("sym", "asym"):
            fields["symmetric"] = opt == "sym"
        elif kind == "int8" and opt in ("per_channel", "per_tensor"):
            fields["per_channel"] = opt == "per_channel"
        elif kind == "magnitude" and opt == "global":
            fields["global_threshold"] = True
        elif kind == "random" and key == "seed" and value:
            fields["seed"] = _int_option(spec, "seed", value, 0)
        elif kind == "heads" and key == "calib" and value:
            fields["calibration"] = _int_option(spec, "calib", value, 1)
        elif kind in ("rtn", "magnitude", "random") and key == "scope" and value in SCOPES:
            fields["scope"] = value
        else:
            raise UserError(f"variant {spec!r}: unknown option {opt!r} for {kind}")
    return VariantSpec(**fields)  # type: ignore[arg-type]
