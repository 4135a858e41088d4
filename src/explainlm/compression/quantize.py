"""Quantization: weight-only round-to-nearest group quantization, dynamic int8, and dtype casts.

Round-to-nearest (RTN) k-bit group quantization, as GGUF (``Q4_0``/``Q4_1``…) and GPTQ-style
formats store weights (GPTQ adds error-compensating updates on top; RTN is its baseline). Each
row of a weight matrix ``W[out, in]`` is cut into groups of ``g`` consecutive input columns (``g = 0``:
the whole row is one group; a last partial group is quantized on its own). Per group:

* asymmetric (GGUF ``Q{k}_1``): ``d = (max − min) / (2^k − 1)``, ``m = min``, both stored as float16;
  ``q = clamp(round((w − m) / d), 0, 2^k − 1)``; ``ŵ = m + d·q``. Storage: k bits per weight plus
  32 bits per group.
* symmetric (absmax, GGUF ``Q8_0``-like): ``d = max|w| / (2^(k−1) − 1)`` stored as float16;
  ``q = clamp(round(w / d), −(2^(k−1) − 1), 2^(k−1) − 1)``; ``ŵ = d·q``. Storage: k bits per weight
  plus 16 bits per group.

``round`` is round-half-to-even; the arithmetic runs in float64 and ``ŵ`` is cast back to the
weight's dtype, so the variant runs de-quantized (the same numbers a quantized kernel multiplies,
without the kernel's own activation rounding).

>>> w = torch.linspace(-1, 1, 64).view(2, 32)
>>> len(torch.unique(rtn_dequantize(w, bits=2, group=32)[0]))  # 2^2 levels in a group
4
>>> bool((rtn_dequantize(w, bits=8, group=32) - w).abs().max() <= 1.01 / 255 / 2)
True
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

SCALE_DTYPE = torch.float16


def _grouped(w: torch.Tensor, group: int) -> tuple[torch.Tensor, int]:
    """``w`` as float64 ``[rows, n_groups, g]``; a partial last group is padded with copies of the
    row's last value (which leaves its min, max and absmax unchanged). Returns the padding."""
    x = w.detach().reshape(w.shape[0], -1).to(torch.float64)
    g = x.shape[1] if group <= 0 else min(group, x.shape[1])
    pad = (-x.shape[1]) % g
    if pad:
        x = torch.cat([x, x[:, -1:].expand(-1, pad)], dim=1)
    return x.view(x.shape[0], -1, g), pad


def rtn_dequantize(
    w: torch.Tensor, bits: int, group: int = 32, symmetric: bool = False
) -> torch.Tensor:
    """``ŵ``: ``w`` quantized to ``bits`` per weight in groups of ``group`` columns, de-quantized."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    x, pad = _grouped(w, group)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        d = (x.abs().amax(-1, keepdim=True) / qmax).to(SCALE_DTYPE).to(torch.float64)
        safe = torch.where(d > 0, d, torch.ones_like(d))
        q = torch.where(d > 0, torch.round(x / safe), torch.zeros_like(x)).clamp(-qmax, qmax)
        xq = q * d
    else:
        levels = 2**bits - 1
        lo = x.amin(-1, keepdim=True)
        d = ((x.amax(-1, keepdim=True) - lo) / levels).to(SCALE_DTYPE).to(torch.float64)
        m = lo.to(SCALE_DTYPE).to(torch.float64)
        safe = torch.where(d > 0, d, torch.ones_like(d))
        q = torch.where(d > 0, torch.round((x - m) / safe), torch.zeros_like(x)).clamp(0, levels)
        xq = m + q * d
    flat = xq.view(xq.shape[0], -1)
    if pad:
        flat = flat[:, :-pad]
    return flat.reshape(w.shape).to(w.dtype)


def rtn_bits_per_weight(bits: int, group: int, columns: int, symmetric: bool) -> float:
    """Storage bits per weight of a ``[*, columns]`` matrix: codes plus the per-group scales."""
    g = columns if group <= 0 else min(group, columns)
    groups_per_row = math.ceil(columns / g)
    return bits + (16 if symmetric else 32) * groups_per_row / columns


def dynamic_int8(model: nn.Module, names: list[str], *, per_channel: bool = False) -> nn.Module:
    """torch's dynamic int8 quantization (``torch.ao.quantization.quantize_dynamic``) of the named
    ``nn.Linear`` modules: int8 weights (symmetric, per tensor or per output channel), activations
    quantized to uint8 on the fly per batch (so a text's scores depend slightly on its batch)."""
    import warnings

    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of torch.ao
        return quantize_dynamic(model, {n: qconfig for n in names}, dtype=torch.qint8, inplace=True)


def cast_floats(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Every floating-point parameter and buffer cast to ``dtype`` (bf16 / fp16 variants)."""
    return model.to(dtype)


def serialized_bytes(model: nn.Module) -> int:
    """Bytes of the model's state dict as torch serializes it (quantized modules: packed int8)."""
    import io

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def unique_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers, tied ones once (the first name), by storage."""
    seen: set[int] = set()
    out: dict[str, Any] = {}
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.numel() == 0:
            continue
        key = t.data_ptr()
        if key in seen:
            continue
        seen.add(key)
        out[name] = t
    return out
