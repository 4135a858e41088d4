"""explainlm: explain language-model predictions, check the explanations, and do it fast.

>>> import explainlm
>>> clf = explainlm.load_model("smollm2-135m")      # zero-shot sentiment on the built-in LLM  # doctest: +SKIP
>>> clf.predict(["A wonderful, touching film."])    # doctest: +SKIP
[Prediction(text='A wonderful, touching film.', label='positive', probs={...}, ...)]
"""

from __future__ import annotations

from explainlm.attribution import explain
from explainlm.errors import ExplainlmError, UserError
from explainlm.evaluation import evaluate
from explainlm.models import (
    Generator,
    ModelWrapper,
    Prediction,
    SequenceClassifier,
    ZeroShotClassifier,
    list_models,
    load_model,
    make_task,
)
from explainlm.store import open_store
from explainlm.targets import ClassTarget, GenerationTarget, parse_target

__version__ = "0.1.0"

__all__ = [
    "ClassTarget",
    "ExplainlmError",
    "GenerationTarget",
    "Generator",
    "ModelWrapper",
    "Prediction",
    "SequenceClassifier",
    "UserError",
    "ZeroShotClassifier",
    "__version__",
    "evaluate",
    "explain",
    "list_models",
    "load_model",
    "make_task",
    "open_store",
    "parse_target",
]
