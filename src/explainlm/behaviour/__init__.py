"""Global behaviour: what a model relies on across a dataset.

* :mod:`~explainlm.behaviour.importance` — dataset-level importance of words and n-grams, per class,
  with bootstrap CIs over texts;
* :mod:`~explainlm.behaviour.surrogate` — sparse linear and tree surrogates trained to imitate the
  model, with held-out fidelity and the complexity–fidelity curve;
* :mod:`~explainlm.behaviour.sensitivity` — how the prediction moves as words are removed, in
  attribution order versus random order.

See ``docs/global.md`` for definitions and citations.
"""

from explainlm.behaviour.importance import GlobalImportance, TextRecord, aggregate

__all__ = ["GlobalImportance", "TextRecord", "aggregate"]
