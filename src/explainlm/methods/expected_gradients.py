"""Expected gradients / GradientSHAP: integrated gradients averaged over sampled baselines.

φ_t = E_{e′ ~ D, α ~ U(0, 1)} [ (e_t − e′_t) · ∂f(e′ + α (e − e′)) / ∂e_t ], summed over the
embedding, estimated with ``samples`` draws of (e′, α), one gradient each (Erion et al., 2021;
Lundberg & Lee, 2017, GradientSHAP). ``samples=32`` costs one 32-step integrated-gradients run.

The baseline distribution D replaces every text token (template and special tokens are kept):

* ``vocab`` (default): by the embedding of a token drawn uniformly from the vocabulary's ordinary
  (non-special) tokens, independently per position and draw: random text, real token embeddings;
  ``vocab_limit=K`` draws among the first K ids only (byte-level BPE vocabularies put frequent
  pieces first).
* ``pad`` / ``mask`` / ``zero``: the padding, mask (or unknown) token's embedding, or zeros, as
  :class:`~explainlm.methods.gradient.IntegratedGradients` (then only α and the noise vary).

``noise`` adds N(0, (noise · std of the text's embeddings)²) to each baseline (GradientSHAP's
noise). ``target`` is the function of the class scores that is differentiated (default the
label's log-odds, see :mod:`explainlm.methods.retarget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.methods.gradient import baseline_embeddings
from explainlm.methods.retarget import check_score_target, retargeted, text_generator

EG_BASELINES = ("vocab", "pad", "mask", "zero")


def ordinary_token_ids(engine: Engine, limit: int | None = None) -> torch.Tensor:
    """Ids of the vocabulary's non-special tokens (the first ``limit`` ids when given)."""
    tok = engine.wrapper.tokenizer
    size = min(len(tok), int(engine.wrapper.embedding_layer.num_embeddings))
    if limit:
        size = min(size, int(limit))
    special = set(tok.all_special_ids)
    return torch.tensor([i for i in range(size) if i not in special])


class ExpectedGradients(Method):
    """IG averaged over baselines drawn from a distribution, one random α per draw."""

    name = "expected_gradients"
    defaults = {
        "samples": 32,
        "baseline": "vocab",
        "vocab_limit": None,
        "noise": 0.0,
        "target": "log_odds",
        "seed": 0,
    }
    citation = (
        "Erion, Janizek, Sturmfels, Lundberg & Lee (2021), Improving performance of deep learning "
        "models with axiomatic attribution priors and expected gradients; Lundberg & Lee (2017)"
    )

    def validate(self) -> None:
        if int(self.params["samples"]) < 1:
            raise UserError("expected_gradients: samples must be ≥ 1")
        if self.params["baseline"] not in EG_BASELINES:
            raise UserError(
                f"expected_gradients: baseline must be one of {', '.join(EG_BASELINES)}"
            )
        if float(self.params["noise"]) < 0:
            raise UserError("expected_gradients: noise must be ≥ 0")
        check_score_target(self.name, self.params["target"])

    @torch.no_grad()
    def baselines(
        self, engine: Engine, item: Item, x: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """``samples`` baselines ``[n, T, H]`` for one item (template/special tokens kept)."""
        n = int(self.params["samples"])
        special = torch.tensor(item.encoding.special, device=x.device).view(1, -1, 1)
        kind = self.params["baseline"]
        if kind == "vocab":
            pool = ordinary_token_ids(engine, self.params["vocab_limit"])
            pick = pool[torch.randint(len(pool), (n, x.shape[0]), generator=gen)]
            base = engine.wrapper.embed(pick.to(engine.wrapper.device)).to(x.device, x.dtype)
        else:
            base = baseline_embeddings(engine, x, item, kind).unsqueeze(0).repeat(n, 1, 1)
        level = float(self.params["noise"])
        if level > 0:
            sigma = level * float(x.std())
            base = base + torch.randn(base.shape, generator=gen).to(x.device, x.dtype) * sigma
        return torch.where(special, x.unsqueeze(0), base)

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        n = int(self.params["samples"])
        drawn: dict[int, torch.Tensor] = {}  # id(item) → x − baseline, [n, T, H]

        def rows(
            item: Item, x: torch.Tensor, special: torch.Tensor, _: torch.Generator
        ) -> torch.Tensor:
            gen = text_generator(int(self.params["seed"]), item.text)
            base = self.baselines(engine, item, x, gen)
            alpha = torch.rand((n, 1, 1), generator=gen).to(x.device, x.dtype)
            drawn[id(item)] = x.unsqueeze(0) - base
            return base + alpha * (x.unsqueeze(0) - base)

        def reduce(
            item: Item, r: torch.Tensor, grads: torch.Tensor, values: torch.Tensor
        ) -> dict[str, Any]:
            diff = drawn.pop(id(item))
            return {"token_scores": (diff * grads).sum(-1).mean(0).cpu().numpy()}

        with retargeted(engine, self.params["target"]) as eng:
            return eng.embedding_gradients(items, n, rows, reduce)
