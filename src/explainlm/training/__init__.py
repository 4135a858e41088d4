"""Fine-tuning: turn an encoder into a sequence classifier (``explainlm train``).

>>> from explainlm.training import train_classifier
>>> train_classifier("train.tsv", "dev.tsv", output_dir="models/clf",
...                  text_column="sentence")                       # doctest: +SKIP
"""

from explainlm.training.metrics import classification_metrics, evaluate_classifier, format_metrics
from explainlm.training.trainer import (
    TrainResult,
    train_classifier,
)

__all__ = [
    "TrainResult",
    "classification_metrics",
    "evaluate_classifier",
    "format_metrics",
    "train_classifier",
]
