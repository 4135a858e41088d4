"""Logit lens (nostalgebraist 2020): read each layer's residual stream through the unembedding.

For every layer ``i`` the residual stream leaving block ``i`` (``layers.{i}.resid_post``) goes
through the model's final norm and then its unembedding (``lm_head``), giving a next-token
distribution per position. At the last layer this *is* the model's own output distribution.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("smollm2-135m")                                      # doctest: +SKIP
>>> res = lens(w, "The Eiffel Tower is located in the city of", top_k=3, target=" Paris")  # doctest: +SKIP
>>> res.to_json()["layers"][-1]["top"][-1][0]["token"]                          # doctest: +SKIP
' Paris'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.internals.hooks import architecture, hooks


@dataclass
class LensResult:
    """Top-k next-token predictions per layer and position (and the target's prob and rank)."""

    tokens: list[str]
    layers: list[int]
    top_ids: list[list[list[int]]]  # [layer][position][k]
    top_tokens: list[list[list[str]]]
    top_probs: list[list[list[float]]]
    target: str | None = None
    target_id: int | None = None
    target_probs: list[list[float]] = field(default_factory=list)  # [layer][position]
    target_ranks: list[list[int]] = field(default_factory=list)  # 1 = top

    def to_json(self) -> dict[str, Any]:
        """``{"tokens": [...], "layers": [{"layer": i, "top": [[{"token", "prob"}, ...], ...]}]}``,
        final layer last; a ``"target"`` key (probs and ranks per layer) is added only when a
        target was given."""
        doc: dict[str, Any] = {
            "tokens": list(self.tokens),
            "layers": [
                {
                    "layer": layer,
                    "top": [
                        [{"token": t, "prob": p} for t, p in zip(ts, ps, strict=True)]
                        for ts, ps in zip(self.top_tokens[k], self.top_probs[k], strict=True)
                    ],
                }
                for k, layer in enumerate(self.layers)
            ],
        }
        if self.target is not None:
            doc["target"] = {
                "token": self.target,
                "id": self.target_id,
                "layers": [
                    {"layer": layer, "prob": self.target_probs[k], "rank": self.target_ranks[k]}
                    for k, layer in enumerate(self.layers)
                ],
            }
        return doc


def target_token_id(wrapper: Any, target: str) -> tuple[int, list[str]]:
    """The id of the first token of ``target`` and a note if it spans several tokens."""
    ids = wrapper.tokenizer.encode(target, add_special_tokens=False)
    if not ids:
        raise UserError(f"the target {target!r} tokenizes to nothing")
    notes = []
    if len(ids) > 1:
        pieces = wrapper.tokenizer.convert_ids_to_tokens(ids)
        notes.append(f"target {target!r} is {len(ids)} tokens {pieces}; using the first")
    return int(ids[0]), notes


def _decode(wrapper: Any, ids: Sequence[int]) -> list[str]:
    return [wrapper.tokenizer.decode([int(i)]) for i in ids]


def lens(
    wrapper: Any,
    prompt: str,
    *,
    top_k: int = 5,
    target: str | None = None,
    layers: Sequence[int] | None = None,
    positions: Sequence[int] | None = None,
    template: str | None = None,
) -> LensResult:
    """Apply the logit lens to ``prompt`` (raw text, no chat markup).

    ``layers`` and ``positions`` restrict the output (default: all); only the top-k and the target
    are kept, one layer at a time, so long inputs fit in memory.
    """
    if wrapper.kind != "causal_lm":
        raise UserError("the logit lens needs a causal language model")
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, got {top_k}")
    arch = architecture(wrapper.model)
    head = wrapper.model.get_output_embeddings()
    if arch.final_norm is None or head is None:
        raise UserError("this model has no final norm and unembedding to apply")
    enc = wrapper.encode([prompt], template=template, chat=False)[0]
    layer_list = list(range(arch.n_layers)) if layers is None else sorted(set(layers))
    for i in layer_list:
        if not 0 <= i < arch.n_layers:
            raise UserError(f"layer {i} out of range 0..{arch.n_layers - 1}")
    pos = list(range(len(enc))) if positions is None else [p % len(enc) for p in positions]
    tid: int | None = None
    if target is not None:
        tid, _ = target_token_id(wrapper, target)
    batch = wrapper.collate([enc])
    resid: dict[int, torch.Tensor] = {}

    def keep(i: int) -> Any:
        return lambda t: resid.__setitem__(i, t[0].detach())

    fns = {f"layers.{i}.resid_post": keep(i) for i in layer_list}
    with torch.no_grad(), hooks(wrapper, fns, arch=arch):
        wrapper.forward(batch)
    cols = batch.positions(0)
    res = LensResult([enc.tokens[p] for p in pos], layer_list, [], [], [], target, tid)
    k = min(top_k, head.weight.shape[0])
    with torch.no_grad():
        for i in layer_list:
            h = resid[i][[cols[p] for p in pos]]
            logits = head(arch.final_norm(h.unsqueeze(0)))[0].float()
            probs = torch.softmax(logits, -1)
            vals, ids = probs.topk(k, dim=-1)
            res.top_ids.append(ids.tolist())
            res.top_tokens.append([_decode(wrapper, row) for row in ids.tolist()])
            res.top_probs.append(vals.tolist())
            if tid is not None:
                pt = probs[:, tid]
                res.target_probs.append(pt.tolist())
                res.target_ranks.append(((probs > pt[:, None]).sum(-1) + 1).tolist())
    return res
