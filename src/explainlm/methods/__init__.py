"""The method registry: every explanation method by name, with one ``attribute()`` contract.

>>> from explainlm.methods import get_method, METHODS
>>> sorted(METHODS)[:3]
['attention', 'attention_rollout', 'grad_x_input']
>>> get_method("integrated_gradients", steps=16).params["steps"]
16
"""

from __future__ import annotations

from typing import Any

from explainlm.errors import UserError
from explainlm.methods.attention import Attention, AttentionRollout
from explainlm.methods.base import Method
from explainlm.methods.gradient import GradXInput, IntegratedGradients, Saliency, SmoothGrad
from explainlm.methods.perturbation import KernelShap, Lime, Occlusion, RandomScores
from explainlm.methods.trust import TRUST_CANDIDATES

METHODS: dict[str, type[Method]] = {
    m.name: m
    for m in (
        Saliency,
        GradXInput,
        IntegratedGradients,
        SmoothGrad,
        Attention,
        AttentionRollout,
        Occlusion,
        Lime,
        KernelShap,
        RandomScores,
    )
}
METHODS.update({m.name: m for m in TRUST_CANDIDATES})  # issue 12: faithful gradient-cost candidates


def get_method(name: str, **params: Any) -> Method:
    """Instantiate a registered method by name with its parameters."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
    return cls(**params)


__all__ = ["METHODS", "Method", "get_method"]
