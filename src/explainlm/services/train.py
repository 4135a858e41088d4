"""Training jobs: fine-tune an encoder into a classifier (``explainlm train``), recorded as a run.

>>> build_request(TrainRequest, train_file="t.tsv", output="out", epochs=0)
Traceback (most recent call last):
...
explainlm.errors.UserError: invalid options: epochs: Input should be greater than or equal to 1 (got 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field, field_validator

from explainlm.services.base import ServiceContext, ServiceRequest, build_request

__all__ = ["TrainRequest", "TrainResultDoc", "build_request", "run"]


class TrainRequest(ServiceRequest):
    command: ClassVar[str] = "train"
    train_file: str
    output: str
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    base_model: str = "minilm-l6"
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    max_length: int = Field(128, ge=8)
    seed: int = 0
    patience: int = Field(1, ge=1)
    limit: int | None = Field(None, ge=1)
    dev_limit: int | None = Field(None, ge=1)
    augment: str | None = None
    device: str | None = None

    @field_validator("label_names")
    @classmethod
    def _names(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not all(n.strip() for n in v) or len(set(v)) != len(v)):
            raise ValueError("label names must be distinct and non-empty")
        return v

    @field_validator("augment")
    @classmethod
    def _augment(cls, v: str | None) -> str | None:
        if v is not None:
            from explainlm.training.augment import parse_augment

            parse_augment(v)
        return v


@dataclass
class TrainResultDoc:
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json_doc(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **{k: v for k, v in self.summary.items() if k != "epochs_run"},
        }


def _short(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metrics for the run store and --json: accuracy, macro-F1, n and the per-class report."""
    if metrics is None:
        return None
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "n", "report") if k in metrics}


def run(req: TrainRequest, ctx: ServiceContext, log: Any = print) -> TrainResultDoc:
    """Train, evaluate on the test file when given, and record the run (model = the base model)."""
    from explainlm.training import evaluate_classifier, format_metrics, train_classifier

    with ctx.recorded_run(req, model=req.base_model) as run_ctx:
        result = train_classifier(
            req.train_file,
            req.dev_file,
            output_dir=req.output,
            text_column=req.text_column,
            label_column=req.label_column,
            label_names=req.label_names,
            base_model=req.base_model,
            epochs=req.epochs,
            batch_size=req.batch_size,
            learning_rate=req.learning_rate,
            max_length=req.max_length,
            seed=req.seed,
            patience=req.patience,
            limit=req.limit,
            dev_limit=req.dev_limit,
            augment=req.augment,
            device=req.device,
            progress=ctx.progress,
            log=log,
        )
        test_metrics = None
        if req.test_file is not None:
            classifier = ctx.models.task(str(result.output_dir))
            test_metrics = evaluate_classifier(
                classifier,
                req.test_file,
                text_column=req.text_column,
                label_column=req.label_column,
                max_length=req.max_length,
            )
            log(format_metrics(test_metrics, result.labels, f"test ({req.test_file})"))
        run_ctx.summary.update(
            {
                "output_dir": str(result.output_dir),
                "labels": result.labels,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "dev": _short(result.dev_metrics),
                "test": _short(test_metrics),
                "augment": req.augment,
                "train_seconds": result.train_seconds,
                "device": result.device,
            }
        )
        return TrainResultDoc(run_ctx.run_id, dict(run_ctx.summary))
