"""Explaining generation: attribute every generated token to the prompt and earlier tokens."""

from explainlm.generation.attribution import explain_generation
from explainlm.generation.engine import GenerationEngine, GenerationItem
from explainlm.generation.result import GenerationAttribution, GenerationSet
from explainlm.generation.scorer import NextTokenScorer

__all__ = [
    "GenerationAttribution",
    "GenerationEngine",
    "GenerationItem",
    "GenerationSet",
    "NextTokenScorer",
    "explain_generation",
]
