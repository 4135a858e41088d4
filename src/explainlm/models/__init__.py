"""Models: loading built-in, local and hub models behind one wrapper, and the three task kinds.

>>> from explainlm.models import load_model
>>> clf = load_model("smollm2-135m")                    # zero-shot sentiment classifier  # doctest: +SKIP
>>> clf.predict(["A wonderful film."])[0].probs          # doctest: +SKIP
{'negative': 0.08, 'positive': 0.92}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.errors import UserError
from explainlm.models.classifiers import (
    DEFAULT_SENTIMENT_LABELS,
    DEFAULT_SENTIMENT_TEMPLATE,
    Classifier,
    Prediction,
    SequenceClassifier,
    ZeroShotClassifier,
)
from explainlm.models.generation import Generation, Generator
from explainlm.models.sources import BUILTINS, ModelSource, resolve_source
from explainlm.models.wrapper import Batch, Encoding, ModelWrapper

TASKS = ("sequence_classifier", "zero_shot", "generator")
Task = Classifier | Generator

__all__ = [
    "BUILTINS",
    "Batch",
    "Classifier",
    "Encoding",
    "Generation",
    "Generator",
    "ModelSource",
    "ModelWrapper",
    "Prediction",
    "SequenceClassifier",
    "TASKS",
    "Task",
    "ZeroShotClassifier",
    "list_models",
    "load_model",
    "make_task",
    "resolve_source",
]


def make_task(
    wrapper: ModelWrapper,
    task: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    template: str | None = None,
    verbalizers: Sequence[str] | None = None,
    calibrate: bool | None = None,
    chat: bool | None = None,
) -> Task:
    """Wrap a loaded model as one of the task kinds (default: what the model is built for)."""
    if task is None:
        task = {"sequence_classifier": "sequence_classifier", "causal_lm": "zero_shot"}.get(
            wrapper.kind, ""
        )
        if not task:
            raise UserError(
                f"{wrapper.name} is an encoder without a classification head: fine-tune it with "
                "`explainlm train` and use the trained directory as --model"
            )
    if task == "sequence_classifier":
        return SequenceClassifier(wrapper, labels)
    if task == "zero_shot":
        meta = wrapper.meta.get("zero_shot", {})
        return ZeroShotClassifier(
            wrapper,
            labels or meta.get("labels") or DEFAULT_SENTIMENT_LABELS,
            template or meta.get("template") or DEFAULT_SENTIMENT_TEMPLATE,
            verbalizers,
            chat=bool(chat) if chat is not None else False,
            calibrate=bool(calibrate) if calibrate is not None else bool(meta.get("calibrate")),
        )
    if task == "generator":
        return Generator(wrapper, chat=chat)
    raise UserError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


def load_model(
    name: str,
    task: str | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    **task_options: Any,
) -> Task:
    """Load a model by built-in name, local directory or hub id, as a task (see :func:`make_task`)."""
    wrapper = ModelWrapper.load(name, device=device, dtype=dtype)
    return make_task(wrapper, task, **task_options)


def list_models() -> list[dict[str, str]]:
    """The built-in models."""
    return [
        {"name": b.name, "kind": b.kind, "description": b.description} for b in BUILTINS.values()
    ]
