"""Gradient methods on the verbalizer log-odds (contrastive logit difference) instead of p.

Yin & Neubig (2022) explain a language model's choice of one token *rather than* a foil by the
gradient of the logit difference; for a two-label zero-shot classifier that is exactly the
log-odds of the label renormalised over the verbalizers, log p_c − log(1 − p_c) = s_c − s_other.
Unlike p, it does not saturate for confident predictions (∂p/∂s = p(1 − p) → 0).

``contrastive_ig``: integrated gradients of that target (all of :class:`IntegratedGradients`'
parameters, with ``target`` added); its completeness delta is in log-odds units.
``contrastive_grad_x_input``: gradient × input of that target (Yin & Neubig's contrastive
gradient × input), one gradient per text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.engine import Engine, Item
from explainlm.methods.gradient import GradXInput, IntegratedGradients
from explainlm.methods.retarget import check_score_target, retargeted

CITATION = (
    "Yin & Neubig (2022), Interpreting Language Models with Contrastive Explanations; "
    "Sundararajan, Taly & Yan (2017)"
)


class ContrastiveIG(IntegratedGradients):
    """Integrated gradients of the label's log-odds (= the contrastive logit difference)."""

    name = "contrastive_ig"
    defaults = {**IntegratedGradients.defaults, "steps": 32, "target": "log_odds"}
    citation = CITATION

    def validate(self) -> None:
        super().validate()
        check_score_target(self.name, self.params["target"])

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        with retargeted(engine, self.params["target"]) as eng:
            return super()._attribute(eng, items, granularity)


class ContrastiveGradXInput(GradXInput):
    """Gradient × input of the label's log-odds (Yin & Neubig's contrastive gradient × input)."""

    name = "contrastive_grad_x_input"
    defaults = {"target": "log_odds"}
    citation = CITATION

    def validate(self) -> None:
        check_score_target(self.name, self.params["target"])

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        with retargeted(engine, self.params["target"]) as eng:
            return super()._attribute(eng, items, granularity)
