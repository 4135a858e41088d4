"""Can this explanation be trusted? Faithfulness, plausibility, stability and sanity metrics.

>>> from explainlm.evaluation import METRICS
>>> METRICS["comprehensiveness"].family, METRICS["token_f1"].family
('faithfulness', 'plausibility')

See ``docs/evaluation.md`` for each metric's definition and citation.
"""

from __future__ import annotations

from explainlm.evaluation.api import (
    DEFAULT_METRICS,
    EvaluationResult,
    evaluate,
    get_metric,
    prepare_items,
)
from explainlm.evaluation.base import Case, Metric
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
from explainlm.evaluation.stability import (
    MaxSensitivityEdits,
    MaxSensitivityNoise,
    method_agreement,
)
from explainlm.evaluation.stats import bootstrap_ci, paired_test

METRICS: dict[str, type[Metric]] = {
    m.name: m
    for m in (
        Comprehensiveness,
        Sufficiency,
        DeletionAUC,
        InsertionAUC,
        TauLOO,
        IGDelta,
        TokenF1,
        IouF1,
        AUPRC,
        MaxSensitivityNoise,
        MaxSensitivityEdits,
        ParameterRandomization,
        SoftNC,
        SoftNS,
    )
}

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "Case",
    "EvaluationResult",
    "Metric",
    "bootstrap_ci",
    "evaluate",
    "get_metric",
    "method_agreement",
    "paired_test",
    "prepare_items",
    "randomization_test",
]
