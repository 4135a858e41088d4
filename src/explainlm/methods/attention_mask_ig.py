"""Integrated gradients along an attention-mask path: from "features absent" to "present".

Plain IG moves the input embeddings from a baseline token (padding) to the text; a decoder has
never seen such inputs, and the metrics that judge the scores *delete* words instead. Here the
path is the one deletion itself interpolates: every attention logit towards a feature's tokens
gets the bias log g_j, with one gate g_j per feature (word unit, or token), so g_j = 1 is the
text as it is and g_j → 0 removes the feature from every attention read (its key/value pairs
vanish from every query's softmax; the other tokens keep their positions). The score of j is

    φ_j = ∫₀¹ ∂f(g = α·1) / ∂g_j dα,

integrated with ``steps`` Gauss-Legendre points (32: one 32-step IG run's gradient rows), and
Σ_j φ_j ≈ f(x) − f(x with every feature masked); that completeness gap is ``delta``. The idea is
integrated gradients (Sundararajan et al., 2017) on the attention-masking ablation used by
attribution patching (Nanda, 2023; Kramár et al., 2024, AtP*), which linearises the same
ablation with a single gradient (``steps=1`` here is the midpoint instead).

Needs a model that takes a 4-D additive attention mask (Hugging Face decoders do) and, for a
zero-shot classifier, single-token verbalizers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.methods.gradient import ig_alphas
from explainlm.methods.perturbation import feature_count
from explainlm.methods.retarget import check_score_target, retargeted
from explainlm.methods.sequential_ig import feature_owner
from explainlm.models.batching import token_budget_batches
from explainlm.models.wrapper import Batch


def gated_mask(
    batch: Batch, owners: list[np.ndarray], gates: torch.Tensor, reps: int
) -> torch.Tensor:
    """Additive 4-D masks ``[B·reps, 1, T, T]``: causal (or full) and padding, plus log gates.

    ``gates[r, j]`` multiplies the attention weight of feature j's keys in row r (before the
    softmax renormalises); row r belongs to encoding r // reps.
    """
    n, t = batch.input_ids.shape
    dev = gates.device
    keys = batch.attention_mask.to(dev).bool()  # [n, T]
    causal = torch.ones(t, t, dtype=torch.bool, device=dev)
    if batch.padding_side == "left":  # decoders: causal
        causal = torch.tril(causal)
    allowed = causal.unsqueeze(0) & keys.unsqueeze(1)  # [n, T(q), T(k)]
    col_owner = torch.full((n, t), -1, dtype=torch.long, device=dev)
    for b, own in enumerate(owners):
        col_owner[b, batch.positions(b)] = torch.as_tensor(own, device=dev)
    col_owner = col_owner.repeat_interleave(reps, 0)  # [R, T]
    logg = torch.log(gates.clamp_min(1e-30))  # [R, d_max]
    padded = torch.cat([torch.zeros_like(logg[:, :1]), logg], dim=1)  # column 0: not a feature
    bias = padded.gather(1, col_owner + 1)  # [R, T]
    low = torch.finfo(gates.dtype).min
    mask = torch.where(
        allowed.repeat_interleave(reps, 0), bias.unsqueeze(1), torch.full((), low, device=dev)
    )
    return mask.unsqueeze(1)


class AttentionMaskIG(Method):
    """IG of the target w.r.t. per-feature attention gates, from all masked to all present."""

    name = "attention_mask_ig"
    defaults = {"steps": 32, "target": "log_odds"}
    citation = (
        "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks; "
        "Kramár, Lieberum, Shah & Nanda (2024), AtP*"
    )

    def validate(self) -> None:
        if int(self.params["steps"]) < 1:
            raise UserError("attention_mask_ig: steps must be ≥ 1")
        check_score_target(self.name, self.params["target"])

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        if engine.classifier.rows_per_item() != 1:
            raise UserError("attention_mask_ig needs single-token verbalizers")
        m = int(self.params["steps"])
        alphas, weights = ig_alphas(m, "gausslegendre")
        # rows: the integration points, then all gates 1 (input) and 0 (baseline), weight 0
        a = np.append(alphas, [1.0, 0.0])
        wts = torch.tensor(np.append(weights, [0.0, 0.0]), dtype=torch.float32)
        reps = len(a)
        owners = [feature_owner(it, granularity) for it in items]
        out: list[dict[str, Any]] = [{} for _ in items]
        lengths = [len(it.encoding) for it in items]
        with retargeted(engine, self.params["target"]) as eng:
            for idx in token_budget_batches(lengths, eng.max_batch_tokens, multiplier=reps):
                group = [items[i] for i in idx]
                res = self._group(eng, group, [owners[i] for i in idx], a, wts, granularity)
                for i, r in zip(idx, res, strict=True):
                    out[i] = r
        return out

    def _group(
        self,
        engine: Engine,
        group: list[Item],
        owners: list[np.ndarray],
        a: np.ndarray,
        wts: torch.Tensor,
        granularity: str,
    ) -> list[dict[str, Any]]:
        w = engine.wrapper
        reps = len(a)
        batch = w.collate([it.encoding for it in group])
        d_max = max(int(o.max()) + 1 if (o >= 0).any() else 0 for o in owners)
        gates = torch.tensor(a, dtype=torch.float32, device=w.device).view(-1, 1)
        gates = gates.repeat(len(group), max(d_max, 1)).requires_grad_(True)  # [R, d_max]
        mask = gated_mask(batch, owners, gates, reps)
        src = [b for b in range(len(group)) for _ in range(reps)]
        rep = Batch(
            [batch.encodings[s] for s in src],
            batch.input_ids[src],
            mask,
            batch.position_ids[src],
            batch.padding_side,
        )
        with engine._autocast():
            scores = engine.classifier.class_scores(rep)
        label = torch.tensor([group[s].label_idx for s in src], device=scores.device)
        values = engine.target.value(scores.float(), label)
        (grads,) = torch.autograd.grad(values.sum(), gates)
        engine.passes += 1
        res = []
        for b, it in enumerate(group):
            sl = slice(b * reps, (b + 1) * reps)
            d = feature_count(it, granularity)
            g = grads[sl, :d].float()
            phi = np.zeros(d)
            phi[: g.shape[1]] = (g * wts.to(g.device).view(-1, 1)).sum(0).detach().cpu().numpy()
            v = values[sl].detach().float().cpu().numpy()
            delta = float(phi.sum() - (v[-2] - v[-1]))
            if granularity == "word":
                r: dict[str, Any] = {"word_scores": phi}
            else:
                full = np.zeros(len(it.encoding))
                full[it.encoding.text_token_positions] = phi
                r = {"token_scores": full}
            r["delta"] = delta
            res.append(r)
        return res
