"""Attention weights and attention rollout, read from the query position that makes the prediction:
the first token (``[CLS]``) of an encoder, the last token of a decoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method


def query_position(engine: Engine, length: int) -> int:
    return length - 1 if engine.wrapper.is_decoder else 0


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


class Attention(Method):
    """Attention weights from the prediction's query position, heads averaged.

    ``layer`` = ``"last"``, ``"mean"`` (over layers) or a layer index.
    """

    name = "attention"
    defaults = {"layer": "last"}
    citation = "Jain & Wallace (2019), Attention is not Explanation; Wiegreffe & Pinter (2019)"

    def validate(self) -> None:
        layer = self.params["layer"]
        if layer not in ("last", "mean") and not str(layer).lstrip("-").isdigit():
            raise UserError("attention: layer must be 'last', 'mean' or a layer index")

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        out = []
        layer = self.params["layer"]
        for att in engine.attentions(items):
            q = query_position(engine, att.shape[-1])
            per_layer = att.mean(1)[:, q]  # [L, T]
            if layer == "mean":
                scores = per_layer.mean(0)
            else:
                idx = -1 if layer == "last" else int(layer)
                if not -per_layer.shape[0] <= idx < per_layer.shape[0]:
                    raise UserError(f"attention: the model has {per_layer.shape[0]} layers")
                scores = per_layer[idx]
            out.append({"token_scores": scores.numpy().astype(np.float64)})
        return out


class AttentionRollout(Method):
    """Attention rollout from the prediction's query position (Abnar & Zuidema, 2020)."""

    name = "attention_rollout"
    defaults = {"residual": 0.5}
    citation = "Abnar & Zuidema (2020), Quantifying Attention Flow in Transformers"

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        out = []
        for att in engine.attentions(items):
            r = rollout(att, float(self.params["residual"]))
            out.append({"token_scores": r[query_position(engine, att.shape[-1])].numpy()})
        return out
