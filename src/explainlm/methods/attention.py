"""Attention weights and attention rollout, read from the query position that makes each output's
prediction: the first token (``[CLS]``) of an encoder, the last token of a decoder (for generation,
the position before each generated token)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.configurable import Param
from explainlm.engine import Attribution, AttributionEngine
from explainlm.errors import UserError
from explainlm.methods.base import Method, register_method


def rollout(att: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) of ``att`` ``[layers, heads, T, T]``.

    Per layer Â = residual·I + (1 − residual)·mean_heads(A), rows renormalised; R = Â_L ⋯ Â_1.
    """
    n = att.shape[-1]
    eye = torch.eye(n, dtype=torch.float64)
    r = eye.clone()
    for layer in att.to(torch.float64):
        a = residual * eye + (1 - residual) * layer.mean(0)
        a = a / a.sum(-1, keepdim=True)
        r = a @ r
    return r


@register_method
class Attention(Method):
    """Attention weights from the prediction's query position, heads averaged.

    ``layer`` = ``"last"``, ``"mean"`` (over layers) or a layer index.
    """

    name = "attention"
    schema = {
        "layer": Param("last", int, choices=("last", "mean"), help="which layer's attention"),
    }
    requires = ("attention",)
    citation = "Jain & Wallace (2019), Attention is not Explanation; Wiegreffe & Pinter (2019)"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        out = []
        layer = self.params["layer"]
        for att, queries in engine.attention_maps(items):
            per_layer = att.mean(1)  # [L, T, T]
            if layer == "mean":
                rows = per_layer.mean(0)
            else:
                idx = -1 if layer == "last" else int(layer)
                if not -per_layer.shape[0] <= idx < per_layer.shape[0]:
                    raise UserError(f"attention: the model has {per_layer.shape[0]} layers")
                rows = per_layer[idx]
            out.append(Attribution(rows[queries].numpy().astype(np.float64), "tokens"))
        return out


@register_method
class AttentionRollout(Method):
    """Attention rollout from the prediction's query position (Abnar & Zuidema, 2020)."""

    name = "attention_rollout"
    schema = {
        "residual": Param(0.5, float, ge=0, le=1, help="weight of the residual (identity) path"),
    }
    requires = ("attention",)
    citation = "Abnar & Zuidema (2020), Quantifying Attention Flow in Transformers"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        out = []
        for att, queries in engine.attention_maps(items):
            r = rollout(att, float(self.params["residual"]))
            out.append(Attribution(r[queries].numpy(), "tokens"))
        return out
