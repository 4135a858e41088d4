"""The candidates for faithful gradient-cost attribution on decoder LLMs (issue 12, item 4).

See ``docs/trust-research.md`` for their definitions, citations and measured faithfulness.
"""

from __future__ import annotations

from explainlm.methods.attention_mask_ig import AttentionMaskIG
from explainlm.methods.base import Method
from explainlm.methods.context_cite import ContextCite
from explainlm.methods.contrastive_gradients import ContrastiveGradXInput, ContrastiveIG
from explainlm.methods.expected_gradients import ExpectedGradients
from explainlm.methods.reagent import Reagent
from explainlm.methods.sequential_ig import SequentialIG

TRUST_CANDIDATES: tuple[type[Method], ...] = (
    ContrastiveIG,
    ContrastiveGradXInput,
    ExpectedGradients,
    SequentialIG,
    ContextCite,
    Reagent,
    AttentionMaskIG,
)
