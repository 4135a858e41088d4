"""explainlm: explain language-model predictions, check the explanations, and do it fast.

Everything public is importable from here (``from explainlm import explain``); the subpackages
hold the details. See docs/architecture.md for the layers.

>>> import explainlm
>>> clf = explainlm.load_model("smollm2-135m")      # zero-shot sentiment on the built-in LLM  # doctest: +SKIP
>>> clf.predict(["A wonderful, touching film."])    # doctest: +SKIP
[Prediction(text='A wonderful, touching film.', label='positive', probs={...}, ...)]
>>> "occlusion" in explainlm.METHODS and "comprehensiveness" in explainlm.METRICS
True
"""

from __future__ import annotations

from explainlm import services
from explainlm.attribution import explain
from explainlm.datasets import DATASETS, RationaleExample, load_dataset, read_table
from explainlm.errors import DataFormatError, ExplainlmError, UserError
from explainlm.evaluation import METRICS, EvaluationResult, Metric, evaluate, get_metric
from explainlm.explanation import Explanation, ExplanationSet
from explainlm.generation import GenerationAttribution, GenerationSet, explain_generation
from explainlm.methods import METHODS, Method, get_method
from explainlm.models import (
    Classifier,
    Generation,
    Generator,
    ModelWrapper,
    Prediction,
    SequenceClassifier,
    ZeroShotClassifier,
    list_models,
    load_model,
    make_task,
)
from explainlm.progress import Cancelled, Progress, TerminalProgress
from explainlm.registry import Registry
from explainlm.services import SERVICES, ServiceContext
from explainlm.services.benchmark import BenchmarkResult
from explainlm.store import RunStore, open_store
from explainlm.targets import ClassTarget, GenerationTarget, parse_target

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "METHODS",
    "METRICS",
    "SERVICES",
    "BenchmarkResult",
    "Cancelled",
    "ClassTarget",
    "Classifier",
    "DataFormatError",
    "EvaluationResult",
    "ExplainlmError",
    "Explanation",
    "ExplanationSet",
    "Generation",
    "GenerationAttribution",
    "GenerationSet",
    "GenerationTarget",
    "Generator",
    "Method",
    "Metric",
    "ModelWrapper",
    "Prediction",
    "Progress",
    "RationaleExample",
    "Registry",
    "RunStore",
    "SequenceClassifier",
    "ServiceContext",
    "TerminalProgress",
    "UserError",
    "ZeroShotClassifier",
    "__version__",
    "evaluate",
    "explain",
    "explain_generation",
    "get_method",
    "get_metric",
    "list_models",
    "load_dataset",
    "load_model",
    "make_task",
    "open_store",
    "parse_target",
    "read_table",
    "services",
]
