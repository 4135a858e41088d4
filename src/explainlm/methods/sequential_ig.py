"""Sequential integrated gradients (Enguehard, 2023): one path per feature, the rest held fixed.

For each feature j (a word unit, or a token at token granularity) only j's tokens move, along the
straight line from the baseline to their embeddings, while every other token keeps its own
embedding; the scores of j's tokens are (e_t − e′_t) · ∫₀¹ ∂f/∂e_t dα on that path. The baseline
is the mask token's embedding as in the paper (``baseline="mask"``; a decoder without a mask
token uses its unknown token, else padding), or ``pad`` / ``zero``.

Cost: d features × ``steps`` gradient rows. ``steps=None`` (default) spends a budget of
``budget`` rows per text (32, one 32-step integrated-gradients run): steps = max(1, budget // d),
Gauss-Legendre points (one step is the midpoint rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.methods.gradient import BASELINES, baseline_embeddings, ig_alphas
from explainlm.methods.retarget import check_score_target, retargeted


def feature_owner(item: Item, granularity: str) -> np.ndarray:
    """The feature index of every token of the item (-1: template or special, never moved)."""
    enc = item.encoding
    if granularity == "word":
        owner = np.asarray(enc.word_ids)
        return np.where(np.asarray(enc.special), -1, owner)
    owner = np.full(len(enc), -1)
    owner[enc.text_token_positions] = np.arange(len(enc.text_token_positions))
    return owner


class SequentialIG(Method):
    """Integrated gradients along one path per feature, other features at their input values."""

    name = "sequential_ig"
    defaults = {"steps": None, "budget": 32, "baseline": "mask", "target": "log_odds"}
    citation = "Enguehard (2023), Sequential Integrated Gradients: a simple but effective method"

    def validate(self) -> None:
        if self.params["steps"] is not None and int(self.params["steps"]) < 1:
            raise UserError("sequential_ig: steps must be ≥ 1")
        if int(self.params["budget"]) < 1:
            raise UserError("sequential_ig: budget must be ≥ 1")
        if self.params["baseline"] not in BASELINES:
            raise UserError(f"sequential_ig: baseline must be one of {', '.join(BASELINES)}")
        check_score_target(self.name, self.params["target"])

    def steps_for(self, d: int) -> int:
        if self.params["steps"] is not None:
            return int(self.params["steps"])
        return max(1, int(self.params["budget"]) // max(d, 1))

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        owners = [feature_owner(it, granularity) for it in items]
        plans = [(int(o.max()) + 1 if (o >= 0).any() else 0) for o in owners]
        out: list[dict[str, Any]] = [{} for _ in items]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, d in enumerate(plans):
            if d == 0:
                out[i] = {"token_scores": np.zeros(len(items[i].encoding))}
            else:
                groups.setdefault((d, self.steps_for(d)), []).append(i)
        with retargeted(engine, self.params["target"]) as eng:
            for (d, m), idx in groups.items():
                res = self._group(eng, [items[i] for i in idx], [owners[i] for i in idx], d, m)
                for i, r in zip(idx, res, strict=True):
                    out[i] = r
        return out

    def _group(
        self, engine: Engine, items: list[Item], owners: list[np.ndarray], d: int, m: int
    ) -> list[dict[str, Any]]:
        alphas, weights = ig_alphas(m, "gausslegendre")
        kind = self.params["baseline"]
        owner_of = {id(it): torch.as_tensor(o) for it, o in zip(items, owners, strict=True)}
        diffs: dict[int, torch.Tensor] = {}  # id(item) → x − baseline, [T, H]
        a = torch.tensor(np.tile(alphas, d), dtype=torch.float32)  # row r moves feature r // m
        feat = torch.arange(d).repeat_interleave(m)

        def rows(
            item: Item, x: torch.Tensor, special: torch.Tensor, gen: torch.Generator
        ) -> torch.Tensor:
            base = baseline_embeddings(engine, x, item, kind)
            diffs[id(item)] = (x - base).detach()
            moving = (owner_of[id(item)].view(1, -1) == feat.view(-1, 1)).to(x.device)
            al = a.to(x.device, x.dtype).view(-1, 1, 1)
            path = base.unsqueeze(0) + al * (x - base).unsqueeze(0)
            return torch.where(moving.unsqueeze(-1), path, x.unsqueeze(0))

        def reduce(
            item: Item, r: torch.Tensor, grads: torch.Tensor, values: torch.Tensor
        ) -> dict[str, Any]:
            diff = diffs.pop(id(item))
            owner = owner_of[id(item)].to(grads.device)
            w = torch.tensor(weights, dtype=grads.dtype, device=grads.device).view(1, m, 1, 1)
            avg = (grads.view(d, m, *grads.shape[1:]) * w).sum(1)  # [d, T, H]
            # each token takes the path-averaged gradient of its own feature's path
            own = avg[owner.clamp(min=0), torch.arange(len(owner), device=grads.device)]
            scores = (diff * own).sum(-1) * (owner >= 0)
            return {"token_scores": scores.cpu().numpy()}

        return engine.embedding_gradients(items, d * m, rows, reduce)
