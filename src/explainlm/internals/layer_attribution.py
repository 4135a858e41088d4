"""Layer attribution: which positions of which layers carry the prediction.

At any named hook point (see :mod:`explainlm.internals.hooks`: ``layers.{i}.resid_post``,
``layers.{i}.attn.out``, ``layers.{i}.mlp.out``, ``embed``, …) with activations a ∈ R^{T×d}:

* ``grad_x_activation`` — Σ_h a_{t,h} ∂f/∂a_{t,h}: Grad-CAM for text (Selvaraju et al., 2017, with
  the gradient kept per position instead of pooled; Captum's ``LayerGradientXActivation``);
* ``grad_cam`` — ReLU(Σ_h α_h a_{t,h}) with α_h = mean_t ∂f/∂a_{t,h}: Grad-CAM proper, the
  gradient pooled over positions as it is pooled over an image;
* ``integrated_gradients`` — layer integrated gradients (Sundararajan et al., 2017; Captum's
  ``LayerIntegratedGradients``): (a − a′) ⊙ ∫₀¹ ∂f/∂a(a′ + α(a − a′)) dα summed over h, where a′ is
  the layer's activation on the baseline input (the text's tokens replaced by padding or the mask
  token) or zero; the completeness gap Σ_t attr − (f(α=1) − f(α=0)) is reported per point.

f is the engine's target (default: the probability of the predicted label). Items are packed into
passes under the engine's token budget; gradient × activation reads every point in one
forward/backward pass, integrated gradients takes ``steps + 2`` rows per text and point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from explainlm.behaviour.results import SavedResult
from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.internals.hooks import architecture, expand, hooks
from explainlm.models.batching import token_budget_batches
from explainlm.models.wrapper import Batch

METHODS = ("grad_x_activation", "grad_cam", "integrated_gradients")
BASELINES = ("pad", "mask", "zero")
CITATIONS = {
    "grad_x_activation": "Selvaraju et al. (2017), Grad-CAM; gradient × activation per position",
    "grad_cam": "Selvaraju et al. (2017), Grad-CAM: Visual Explanations from Deep Networks",
    "integrated_gradients": "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks",
}


def _repeat(batch: Batch, rows: int) -> Batch:
    """Each encoding of the batch ``rows`` times in a row (item-major)."""
    idx = torch.arange(len(batch)).repeat_interleave(rows)
    return Batch(
        [batch.encodings[int(i)] for i in idx],
        batch.input_ids[idx],
        batch.attention_mask[idx],
        batch.position_ids[idx],
        batch.padding_side,
    )


def _baseline_ids(engine: Engine, batch: Batch, kind: str) -> torch.Tensor:
    """The batch's ids with every text token replaced by the padding or mask (unknown) token."""
    from explainlm.methods.perturbation import replacement_id

    ids = batch.input_ids.clone()
    tid = replacement_id(engine.wrapper, "mask" if kind == "mask" else "pad")
    for b, enc in enumerate(batch.encodings):
        cols = batch.positions(b)
        for c, sp in zip(cols, enc.special, strict=True):
            if not sp:
                ids[b, c] = tid
    return ids


class _Runner:
    """Forward/backward passes of one engine with activations read or replaced at hook points."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clf = engine.classifier
        self.w = engine.wrapper
        if self.clf.rows_per_item() != 1:
            raise UserError(
                "layer attribution needs one model row per text (single-token verbalizers)"
            )
        self.arch = architecture(self.w.model)

    def values(self, batch: Batch, items: Sequence[Item], ids: torch.Tensor | None = None) -> Any:
        embeds = self.w.embed(batch.input_ids if ids is None else ids).detach()
        embeds.requires_grad_(True)
        scores = self.clf.class_scores(batch, inputs_embeds=embeds).float()
        self.engine.passes += 1
        idx = torch.tensor([it.label_idx for it in items], device=scores.device)
        foil = None
        if self.engine.target.kind == "contrast":
            foil = torch.tensor([it.foil_idx for it in items], device=scores.device)
        return self.engine.target.value(scores, idx, foil)

    def grad_x_activation(
        self, batch: Batch, items: Sequence[Item], points: Sequence[str]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Activations and their gradients at every point, from one forward/backward pass."""
        acts: dict[str, torch.Tensor] = {}

        def keep(name: str) -> Any:
            def fn(t: torch.Tensor) -> None:
                acts[name] = t

            return fn

        with hooks(self.w, {p: keep(p) for p in points}, arch=self.arch):
            v = self.values(batch, items)
        grads = torch.autograd.grad(v.sum(), [acts[p] for p in points], allow_unused=True)
        return {
            p: (acts[p].detach(), torch.zeros_like(acts[p]) if g is None else g)
            for p, g in zip(points, grads, strict=True)
        }

    @torch.no_grad()
    def activations(self, batch: Batch, items: Sequence[Item], point: str, ids: Any) -> Any:
        seen: dict[str, torch.Tensor] = {}
        with hooks(self.w, {point: lambda t: seen.setdefault("a", t)}, arch=self.arch):
            embeds = self.w.embed(ids)
            self.clf.class_scores(batch, inputs_embeds=embeds)
            self.engine.passes += 1
        return seen["a"].detach()

    def integrated(
        self,
        batch: Batch,
        items: Sequence[Item],
        point: str,
        alphas: np.ndarray,
        weights: np.ndarray,
        baseline: str,
    ) -> tuple[list[np.ndarray], list[float]]:
        """Layer IG at one point for every item of the batch (rows: α points, then α = 0 and 1)."""
        act = self.activations(batch, items, point, batch.input_ids)
        if baseline == "zero":
            base = torch.zeros_like(act)
        else:
            base = self.activations(
                batch, items, point, _baseline_ids(self.engine, batch, baseline)
            )
        a = torch.tensor(np.append(alphas, [0.0, 1.0]), dtype=act.dtype, device=act.device)
        wts = torch.tensor(np.append(weights, [0.0, 0.0]), dtype=act.dtype, device=act.device)
        rows = len(a)
        rep = _repeat(batch, rows)
        owners = [it for it in items for _ in range(rows)]
        path = base.repeat_interleave(rows, 0) + a.repeat(len(items)).view(-1, 1, 1) * (
            act - base
        ).repeat_interleave(rows, 0)
        path = path.detach().requires_grad_(True)
        with hooks(self.w, {point: lambda t: path}, arch=self.arch):
            v = self.values(rep, owners)
        (g,) = torch.autograd.grad(v.sum(), path)
        out, deltas = [], []
        for b in range(len(items)):
            sl = slice(b * rows, (b + 1) * rows)
            avg = (g[sl] * wts.view(-1, 1, 1)).sum(0)
            attr = ((act[b] - base[b]) * avg).sum(-1)
            cols = batch.positions(b)
            out.append(attr[cols].cpu().numpy().astype(np.float64))
            vb = v[sl].detach()
            deltas.append(float(attr[cols].sum() - (vb[-1] - vb[-2])))
        return out, deltas


def layer_attribution(
    engine: Engine,
    texts: Sequence[str],
    points: Sequence[str] = ("layers.*.resid_post",),
    *,
    method: str = "grad_x_activation",
    steps: int = 32,
    rule: str = "gausslegendre",
    baseline: str = "pad",
    truncation: bool = True,
    progress: Any = None,
) -> LayerAttribution:
    """Attribute the engine's target to every position of every hook point, for each text."""
    from explainlm.methods.gradient import ig_alphas

    if method not in METHODS:
        raise UserError(f"unknown layer method {method!r}; known: {', '.join(METHODS)}")
    if baseline not in BASELINES:
        raise UserError(f"baseline must be one of {', '.join(BASELINES)}")
    if steps < 1:
        raise UserError("steps must be at least 1")
    runner = _Runner(engine)
    names = expand(runner.arch, list(points))
    if any(n.endswith("attn.pattern") for n in names):
        raise UserError("attention patterns have no hidden dimension: attribute attn.z or attn.out")
    items = engine.prepare(list(texts), truncation=truncation)
    alphas, weights = ig_alphas(steps, rule) if method == "integrated_gradients" else (None, None)
    rows = steps + 2 if method == "integrated_gradients" else 1
    scores: list[list[np.ndarray]] = [[] for _ in items]
    deltas: list[list[float]] = [[] for _ in items]
    lengths = [len(it.encoding) for it in items]
    for idx in token_budget_batches(lengths, engine.max_batch_tokens, multiplier=rows):
        group = [items[i] for i in idx]
        batch = engine.wrapper.collate([it.encoding for it in group])
        if method == "integrated_gradients":
            for p in names:
                attr, delta = runner.integrated(batch, group, p, alphas, weights, baseline)
                for b, i in enumerate(idx):
                    scores[i].append(attr[b])
                    deltas[i].append(delta[b])
        else:
            got = runner.grad_x_activation(batch, group, names)
            for p in names:
                act, grad = got[p]
                if method == "grad_cam":
                    per = _grad_cam(act, grad, batch)
                else:
                    per = (act * grad).sum(-1)
                for b, i in enumerate(idx):
                    scores[i].append(per[b, batch.positions(b)].cpu().numpy().astype(np.float64))
        if progress is not None:
            progress.advance(len(idx))
    labels = engine.classifier.labels
    results = [
        {
            "text": it.text,
            "tokens": list(it.encoding.tokens),
            "special": list(it.encoding.special),
            "word_ids": list(it.encoding.word_ids),
            "label": labels[it.label_idx],
            "predicted": labels[it.predicted],
            "probs": {lab: float(p) for lab, p in zip(labels, it.scores.softmax(-1), strict=True)},
            "target_value": it.target_value,
            "scores": [s.tolist() for s in scores[k]],
            **({"delta": deltas[k]} if method == "integrated_gradients" else {}),
        }
        for k, it in enumerate(items)
    ]
    meta = {
        "method": method,
        "target": engine.target.name,
        "model": engine.classifier.name,
        "citation": CITATIONS[method],
        **({"steps": steps, "rule": rule, "baseline": baseline} if rows > 1 else {}),
    }
    return LayerAttribution(names, results, meta)


def _grad_cam(act: torch.Tensor, grad: torch.Tensor, batch: Batch) -> torch.Tensor:
    """ReLU(Σ_h α_h a_t,h) with α_h the gradient averaged over each text's own positions."""
    mask = batch.attention_mask.to(grad.dtype).unsqueeze(-1)
    alpha = (grad * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
    return torch.relu((act * alpha).sum(-1))


@dataclass
class LayerAttribution(SavedResult):
    """Per text: a points × positions matrix of scores (summed over the hidden dimension)."""

    points: list[str]
    texts: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    format: ClassVar[str] = "layer-attribution/1"

    def matrix(self, i: int = 0) -> np.ndarray:
        return np.asarray(self.texts[i]["scores"], dtype=np.float64)

    def to_json_doc(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.meta, "points": self.points, "texts": self.texts}

    @classmethod
    def from_json_doc(cls, doc: dict[str, Any]) -> LayerAttribution:
        meta = {k: v for k, v in doc.items() if k not in ("format", "run_id", "points", "texts")}
        return cls(doc["points"], doc["texts"], meta, doc.get("run_id"))

    def to_pandas(self) -> Any:
        """One row per (text, point, position)."""
        import pandas as pd

        rows = []
        for i, t in enumerate(self.texts):
            for p, row in zip(self.points, t["scores"], strict=True):
                for pos, (tok, sp, s) in enumerate(
                    zip(t["tokens"], t["special"], row, strict=True)
                ):
                    rows.append(
                        {
                            "text": i,
                            "point": p,
                            "position": pos,
                            "token": tok,
                            "special": sp,
                            "score": s,
                        }
                    )
        return pd.DataFrame(rows)

    def html(self) -> str:
        from explainlm.behaviour.report import layers_html

        return layers_html(self)

    def figure(self, i: int = 0) -> Any:
        from explainlm.behaviour.plots import heatmap_figure
        from explainlm.report.matrix import show

        t = self.texts[i]
        title = f"{self.meta.get('method')} · {t['label']} ({t['target_value']:.3f})"
        return heatmap_figure(
            self.matrix(i),
            self.points,
            [show(tok) for tok in t["tokens"]],
            title,
            "attribution (summed over hidden)",
        )
