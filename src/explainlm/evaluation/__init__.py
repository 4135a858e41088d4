"""Can this explanation be trusted? Faithfulness, plausibility, stability and sanity metrics.

>>> from explainlm.evaluation import METRICS
>>> METRICS["comprehensiveness"].family, METRICS["token_f1"].family
('faithfulness', 'plausibility')

Every metric is a :class:`Metric` registered in :data:`METRICS` (an :class:`explainlm.registry.Registry`).
This package computes metrics only; running them over a dataset (chunks, resume, the run store,
reports) is :mod:`explainlm.services.benchmark`. See ``docs/evaluation.md`` for each metric's
definition and citation.
"""

from __future__ import annotations

from explainlm.evaluation.agreement import method_agreement
from explainlm.evaluation.api import DEFAULT_METRICS, EvaluationResult, evaluate
from explainlm.evaluation.base import (
    METRICS,
    Case,
    Metric,
    feature_scores,
    get_metric,
    prepare_items,
)
from explainlm.evaluation.faithfulness import (
    Comprehensiveness,
    DeletionAUC,
    IGDelta,
    InsertionAUC,
    Sufficiency,
    TauLOO,
)
from explainlm.evaluation.plausibility import AUPRC, IouF1, TokenF1
from explainlm.evaluation.sanity import ParameterRandomization, randomization_test
from explainlm.evaluation.soft_faithfulness import SoftNC, SoftNS
from explainlm.evaluation.stability import MaxSensitivityEdits, MaxSensitivityNoise
from explainlm.evaluation.stats import bootstrap_ci, paired_test

__all__ = [
    "AUPRC",
    "DEFAULT_METRICS",
    "METRICS",
    "Case",
    "Comprehensiveness",
    "DeletionAUC",
    "EvaluationResult",
    "IGDelta",
    "InsertionAUC",
    "IouF1",
    "MaxSensitivityEdits",
    "MaxSensitivityNoise",
    "Metric",
    "ParameterRandomization",
    "SoftNC",
    "SoftNS",
    "Sufficiency",
    "TauLOO",
    "TokenF1",
    "bootstrap_ci",
    "evaluate",
    "feature_scores",
    "get_metric",
    "method_agreement",
    "paired_test",
    "prepare_items",
    "randomization_test",
]
