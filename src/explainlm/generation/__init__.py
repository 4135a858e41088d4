"""Explaining generation: attribute every generated token to the prompt and earlier tokens."""

from explainlm.generation.attribution import explain_generation
from explainlm.generation.result import GenerationAttribution, GenerationSet
from explainlm.generation.scorer import NextTokenScorer

__all__ = ["GenerationAttribution", "GenerationSet", "NextTokenScorer", "explain_generation"]
