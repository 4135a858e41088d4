"""The method registry and the one method contract, for every target kind.

>>> from explainlm.methods import get_method, METHODS
>>> sorted(METHODS)[:3]
['attention', 'attention_mask_ig', 'attention_rollout']
>>> get_method("integrated_gradients", steps=16).params["steps"]
16
>>> get_method("lime", n_samples=0)
Traceback (most recent call last):
...
explainlm.errors.UserError: lime.n_samples must be an integer ≥ 2, got 0

The contract
------------
A method is a :class:`Method` subclass registered in :data:`METHODS` (``@register_method`` or
``@METHODS.register()``). Its parameters are declared once in ``schema`` (name →
:class:`~explainlm.configurable.Param`: type, default, range or choices), which validates values and
describes them (``Method.param_schema()``, a JSON Schema object). Its one entry point is
``attribute(engine, items, granularity)``; subclasses implement ``compute(engine, items,
granularity) -> list[Attribution]``:

1. **plan**: keep-masks over each item's features (``engine.feature_count(item, granularity,
   shared=…)``), embedding rows (a ``rows_fn``), or attention reads;
2. **score**: the engine evaluates the plan against its target: ``engine.score_masks(items, masks,
   granularity, replace)`` → ``[n_masks, n_outputs]`` target values per item;
   ``engine.gradients(items, n_rows, rows_fn, reduce_fn, seed=…)`` → per item and output the
   ``reduce_fn`` dict; ``engine.attention_maps(items)`` → maps and each output's query position;
   ``engine.full_values(item)`` → the target on the unperturbed input;
3. **reduce**: per output column, to an :class:`~explainlm.engine.Attribution` (a score per output
   and unit, plus ``per_output`` and item ``diagnostics``), which the engine turns into its result.

The engine is :class:`~explainlm.engine.Engine` for a classifier (one output: the class target) or
:class:`~explainlm.generation.GenerationEngine` for generated text (one output per generated token,
or one for the whole sequence's log-prob). For generation, features are the prompt's units followed
by the earlier generated tokens (``shared=True``: the prompt's units only, which every output sees);
a mask dropping a generated token still scores that token where it would have come. Seeds come from
``self.rng(engine, item)`` (the method's ``seed`` and the item's identity: text, tokens and target),
so results never depend on batching, chunking or input order. A method that the engine cannot serve
(``requires`` / ``additive``) is refused with a :class:`~explainlm.errors.UserError` before any work.
"""

from __future__ import annotations

from explainlm.engine.contract import Attribution
from explainlm.methods.base import METHODS, Method, get_method, register_method

# isort: off
# importing a method's module registers it (the order here is the registry's order)
from explainlm.methods.gradient import GradXInput, IntegratedGradients, Saliency, SmoothGrad
from explainlm.methods.attention import Attention, AttentionRollout
from explainlm.methods.perturbation import KernelShap, Lime, Occlusion, RandomScores
from explainlm.methods.trust import TRUST_CANDIDATES

for _candidate in TRUST_CANDIDATES:  # issue 12: faithful gradient-cost candidates
    register_method(_candidate)

from explainlm.methods.auto import AutoMethod  # noqa: E402  (auto races the methods above)

# isort: on

__all__ = [
    "METHODS",
    "Attention",
    "AutoMethod",
    "AttentionRollout",
    "Attribution",
    "GradXInput",
    "IntegratedGradients",
    "KernelShap",
    "Lime",
    "Method",
    "Occlusion",
    "RandomScores",
    "Saliency",
    "SmoothGrad",
    "get_method",
    "register_method",
]
