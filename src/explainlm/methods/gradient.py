"""Gradient methods: saliency, input × gradient, integrated gradients, SmoothGrad.

All of them differentiate the target with respect to the input embeddings of the user's text tokens
(template and special tokens are held fixed), through the engine's batched passes; for generation,
each generated token's log-prob is differentiated with respect to everything before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.configurable import Param
from explainlm.engine import Attribution, AttributionEngine
from explainlm.errors import UserError
from explainlm.methods.base import Method, register_method, same_rows

BASELINES = ("pad", "mask", "zero")
IG_RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


def _maps(
    engine: AttributionEngine, items: Sequence[Any], *args: Any, **kw: Any
) -> list[Attribution]:
    """Gradient maps of every output of every item, as token-level attributions."""
    return [Attribution.from_rows(rows) for rows in engine.gradients(items, *args, **kw)]


@register_method
class Saliency(Method):
    """‖∂f/∂e_t‖₂ per token (Simonyan et al., 2014)."""

    name = "saliency"
    requires = ("gradients",)
    citation = "Simonyan, Vedaldi & Zisserman (2014), Deep Inside Convolutional Networks"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        def reduce(
            item: Any, rows: torch.Tensor, grads: torch.Tensor, values: torch.Tensor
        ) -> dict:
            return {"scores": grads[0].norm(dim=-1).float().cpu().numpy()}

        return _maps(engine, items, 1, same_rows, reduce)


@register_method
class GradXInput(Method):
    """Σ_h e_t,h · ∂f/∂e_t,h per token (Shrikumar et al., 2016; Denil et al., 2014)."""

    name = "grad_x_input"
    requires = ("gradients",)
    additive = True
    citation = "Shrikumar et al. (2016), Not Just a Black Box; Denil et al. (2014)"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        def reduce(
            item: Any, rows: torch.Tensor, grads: torch.Tensor, values: torch.Tensor
        ) -> dict:
            return {"scores": (grads[0] * rows[0]).sum(-1).float().cpu().numpy()}

        return _maps(engine, items, 1, same_rows, reduce)


def ig_alphas(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Integration points α in [0, 1] and their weights for a quadrature rule (as in Captum)."""
    if rule == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (x + 1), 0.5 * w
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise UserError("riemann_trapezoid needs at least 2 steps")
        w = np.full(steps, 1.0 / (steps - 1))
        w[0] = w[-1] = 0.5 / (steps - 1)
        return np.linspace(0, 1, steps), w
    step = 1.0 / steps
    start = {"riemann_left": 0.0, "riemann_right": step, "riemann_middle": step / 2}[rule]
    return start + step * np.arange(steps), np.full(steps, step)


def baseline_embeddings(engine: Any, x: torch.Tensor, item: Any, kind: str) -> torch.Tensor:
    """The baseline input: text tokens replaced (pad / mask embedding, or zeros), others kept."""
    w = engine.wrapper
    special = torch.tensor(item.encoding.special, device=x.device)
    if kind == "zero":
        repl = torch.zeros_like(x)
    else:
        tok = w.tokenizer
        tid = tok.mask_token_id if kind == "mask" else None
        if tid is None:
            tid = w.pad_token_id if kind == "pad" or tok.unk_token_id is None else tok.unk_token_id
        repl = w.embed(torch.tensor([tid], device=w.device)).to(x.dtype).expand_as(x)
    return torch.where(special.unsqueeze(-1), x, repl)


@register_method
class IntegratedGradients(Method):
    """(e − e′) ⊙ ∫₀¹ ∂f(e′ + α(e − e′))/∂e dα, summed over the embedding (Sundararajan et al., 2017).

    The integral uses ``steps`` points of ``method``; the completeness delta
    Σ attributions − (f(e) − f(e′)) is reported per explanation (diagnostic ``delta``).
    With ``tolerance`` set, the number of points is adaptive: ``min_steps``, then doubled for the
    texts whose |delta| is still above ``tolerance`` × max(1, |f(e) − f(e′)|), up to ``steps``
    (diagnostics ``steps``: the points of the returned integral, ``model_rows``: every row scored,
    ``converged``).
    """

    name = "integrated_gradients"
    schema = {
        "steps": Param(50, int, ge=1, le=10_000, help="integration points (the most, if adaptive)"),
        "method": Param("gausslegendre", choices=IG_RULES, help="quadrature rule"),
        "baseline": Param("pad", choices=BASELINES, help="the reference input's tokens"),
        "tolerance": Param(
            None, float, gt=0, nullable=True, help="adaptive: target completeness error"
        ),
        "min_steps": Param(8, int, ge=1, le=10_000, help="adaptive: the first number of points"),
    }
    requires = ("gradients",)
    additive = True
    precision_sensitive = True  # its completeness is its guarantee: float32 gradients under auto
    citation = "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks"

    def validate(self) -> None:
        if self.params["method"] == "riemann_trapezoid" and int(self.params["steps"]) < 2:
            raise UserError("integrated_gradients.steps must be ≥ 2 for riemann_trapezoid")

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        tol = self.params["tolerance"]
        if tol is None:
            out = self.integrate(engine, items, int(self.params["steps"]))
            for a in out:
                a.per_output.pop("gap", None)
            return out
        results: list[Attribution | None] = [None] * len(items)
        rows = [0] * len(items)
        pending = list(range(len(items)))
        for n in ig_schedule(int(self.params["min_steps"]), int(self.params["steps"])):
            done = self.integrate(engine, [items[i] for i in pending], n)
            still = []
            for i, a in zip(pending, done, strict=True):
                rows[i] += n + 2
                gap = a.per_output.pop("gap")
                a.diagnostics.update(steps=n, model_rows=rows[i])
                results[i] = a
                if np.any(np.abs(a.per_output["delta"]) > float(tol) * np.maximum(1, np.abs(gap))):
                    still.append(i)
            pending = still
            if not pending:
                break
        for i, a in enumerate(results):
            assert a is not None
            a.diagnostics["converged"] = i not in pending
        return [a for a in results if a is not None]

    def integrate(
        self, engine: AttributionEngine, items: Sequence[Any], steps: int
    ) -> list[Attribution]:
        """IG with ``steps`` points of the rule for every item (per output: ``delta``, ``gap``)."""
        alphas, weights = ig_alphas(steps, self.params["method"])
        kind = self.params["baseline"]
        # rows: the integration points, then the baseline (α = 0) and the input (α = 1), both with
        # weight 0, which give e − e′ and f(e′) exactly as the batch computes them
        a = torch.tensor(np.append(alphas, [0.0, 1.0]), dtype=torch.float32)
        wts = torch.tensor(np.append(weights, [0.0, 0.0]), dtype=torch.float32)

        def rows(
            item: Any, x: torch.Tensor, special: torch.Tensor, gen: torch.Generator
        ) -> torch.Tensor:
            base = baseline_embeddings(engine, x, item, kind)
            al = a.to(x.device, x.dtype).view(-1, 1, 1)
            return base.unsqueeze(0) + al * (x - base).unsqueeze(0)

        def reduce(item: Any, r: torch.Tensor, grads: torch.Tensor, values: torch.Tensor) -> dict:
            diff = r[-1] - r[-2]
            avg = (grads * wts.to(grads.device, grads.dtype).view(-1, 1, 1)).sum(0)
            attr = (diff * avg).sum(-1).float().cpu().numpy()
            gap = float(values[-1]) - float(values[-2])
            return {"scores": attr, "delta": float(attr.sum() - gap), "gap": gap}

        return _maps(engine, items, steps + 2, rows, reduce)


def ig_schedule(min_steps: int, max_steps: int) -> list[int]:
    """Adaptive IG's numbers of points: ``min_steps`` doubled until ``max_steps`` (the last).

    >>> ig_schedule(8, 50)
    [8, 16, 32, 50]
    """
    out = [min(min_steps, max_steps)]
    while out[-1] < max_steps:
        out.append(min(2 * out[-1], max_steps))
    return out


@register_method
class SmoothGrad(Method):
    """The mean of a gradient map over noisy copies of the input (Smilkov et al., 2017).

    Noise N(0, σ²) is added to the text tokens' embeddings, σ = ``noise`` × (max − min) of the input
    embeddings; ``base`` is ``saliency`` (mean of ‖∂f/∂e‖) or ``grad_x_input``. The noise of each
    text is seeded by ``seed`` and the text's identity.
    """

    name = "smoothgrad"
    schema = {
        "samples": Param(20, int, ge=1, le=10_000, help="noisy copies"),
        "noise": Param(0.15, float, ge=0, help="σ as a fraction of the embeddings' range"),
        "base": Param("saliency", choices=("saliency", "grad_x_input"), help="the map averaged"),
        "seed": Param(0, int, ge=0, help="random seed (combined with each text's identity)"),
    }
    requires = ("gradients",)
    citation = "Smilkov et al. (2017), SmoothGrad: removing noise by adding noise"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        n = int(self.params["samples"])
        level = float(self.params["noise"])

        def rows(
            item: Any, x: torch.Tensor, special: torch.Tensor, gen: torch.Generator
        ) -> torch.Tensor:
            sigma = level * float(x.max() - x.min())
            noise = torch.randn((n, *x.shape), generator=gen).to(x.device, x.dtype) * sigma
            noise = noise * (~special).view(1, -1, 1)
            return x.unsqueeze(0) + noise

        def reduce(item: Any, r: torch.Tensor, grads: torch.Tensor, values: torch.Tensor) -> dict:
            if self.params["base"] == "saliency":
                m = grads.norm(dim=-1)
            else:
                m = (grads * r).sum(-1)
            return {"scores": m.mean(0).float().cpu().numpy()}

        return _maps(engine, items, n, rows, reduce, seed=int(self.params["seed"]))
