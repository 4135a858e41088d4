"""Pruning: unstructured magnitude and random pruning, and structured attention-head pruning.

* magnitude (Han et al. 2015): in each weight matrix the ``round(p·n)`` weights of smallest ``|w|``
  are set to 0 (ties: the earlier position first); ``global``: one threshold over all matrices
  (weights with ``|w|`` at or below the ``round(p·N)``-th smallest of all are pruned).
* random: in each matrix ``round(p·n)`` weights chosen uniformly without replacement are set to 0,
  from one ``torch.Generator`` seeded with ``seed`` and visited in module order (reproducible).
* heads (Michel et al. 2019): attention heads ranked by importance (the drop of the target metric
  when the head's output is zeroed, from :func:`explainlm.internals.heads.head_importance`); the
  ``round(p·L·H)`` least important heads over all layers are removed by zeroing their slice of the
  attention output projection's input columns (exactly the zero-ablation the scores measure) and
  their query rows (and, for BERT, key and value rows; for grouped-query attention, a key/value
  head once all its query heads are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def magnitude_prune(weights: Sequence[torch.Tensor], amount: float, *, global_: bool) -> int:
    """Prune ``weights`` in place by magnitude; returns the number of weights set to zero."""
    if amount <= 0:
        return 0
    if global_:
        flat = torch.cat([w.detach().abs().flatten().float() for w in weights])
        k = round(amount * flat.numel())
        if k == 0:
            return 0
        threshold = torch.kthvalue(flat, k).values
        del flat
        pruned = 0
        with torch.no_grad():
            for w in weights:
                mask = w.abs() <= threshold
                pruned += int(mask.sum())
                w.masked_fill_(mask, 0.0)
        return pruned
    pruned = 0
    with torch.no_grad():
        for w in weights:
            k = round(amount * w.numel())
            if k == 0:
                continue
            order = torch.argsort(w.abs().flatten(), stable=True)[:k]
            w.view(-1)[order] = 0.0
            pruned += k
    return pruned


def random_prune(weights: Sequence[torch.Tensor], amount: float, *, seed: int) -> int:
    """Set ``round(p·n)`` uniformly chosen weights of each matrix to zero (seeded); returns the count."""
    if amount <= 0:
        return 0
    gen = torch.Generator().manual_seed(seed)
    pruned = 0
    with torch.no_grad():
        for w in weights:
            k = round(amount * w.numel())
            idx = torch.randperm(w.numel(), generator=gen)[:k]
            w.view(-1)[idx.to(w.device)] = 0.0
            pruned += k
    return pruned


def heads_to_prune(grid: list[list[float]], metric: str, amount: float) -> list[tuple[int, int]]:
    """The ``round(p·L·H)`` least important (layer, head) pairs.

    Importance is the harm of ablating the head: ``−Δ`` for ``label_prob`` (higher is better) and
    ``+Δ`` for ``lm_loss`` (lower is better); ties: lower layer, then lower head, first.
    """
    sign = -1.0 if metric == "label_prob" else 1.0
    cells = [(sign * v, i, h) for i, row in enumerate(grid) for h, v in enumerate(row)]
    n = round(amount * len(cells))
    return sorted((i, h) for _, i, h in sorted(cells)[:n])


def _zero_rows(linear: nn.Linear, start: int, stop: int) -> int:
    linear.weight[start:stop] = 0.0
    count = linear.weight[start:stop].numel()
    if linear.bias is not None:
        linear.bias[start:stop] = 0.0
        count += stop - start
    return count


def prune_heads(model: nn.Module, heads: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Remove ``heads`` (layer, head) in place (see the module docstring); returns what was removed."""
    from explainlm.internals.hooks import architecture

    arch = architecture(model)
    d_h, n_h = arch.d_head, arch.n_heads
    removed = 0
    by_layer: dict[int, set[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, set()).add(head)
    with torch.no_grad():
        for layer, hs in by_layer.items():
            proj, core = arch.attn_proj(layer), arch.attn_core(layer)
            for h in hs:
                proj.weight[:, h * d_h : (h + 1) * d_h] = 0.0
                removed += proj.weight.shape[0] * d_h
                if arch.family == "llama":
                    removed += _zero_rows(core.q_proj, h * d_h, (h + 1) * d_h)
                else:
                    for lin in (core.query, core.key, core.value):
                        removed += _zero_rows(lin, h * d_h, (h + 1) * d_h)
            if arch.family == "llama":
                n_kv = core.k_proj.weight.shape[0] // d_h
                per_group = n_h // n_kv
                for g in range(n_kv):
                    if all(q in hs for q in range(g * per_group, (g + 1) * per_group)):
                        for lin in (core.k_proj, core.v_proj):
                            removed += _zero_rows(lin, g * d_h, (g + 1) * d_h)
    return {"heads": [list(x) for x in sorted(heads)], "removed_params": removed}
