"""``explain()``: the one-call API over the engine and the method registry.

>>> from explainlm import explain
>>> res = explain(["A wonderful, touching film."], "smollm2-135m",
...               methods=["occlusion", "integrated_gradients"])    # doctest: +SKIP
>>> res[0].top(2)                                                    # doctest: +SKIP
[('wonderful', 0.41), ('touching', 0.22)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.explanation import ExplanationSet
from explainlm.methods import get_method
from explainlm.models import Classifier, load_model
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.targets import ClassTarget, parse_target


def explain(
    texts: Sequence[str] | str,
    model: str | Classifier = "smollm2-135m",
    methods: Sequence[str] = ("integrated_gradients",),
    *,
    target: str | ClassTarget | None = None,
    contrast: str | None = None,
    granularity: str = "word",
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    truncation: bool = True,
    progress: bool = False,
    mixed_precision: bool = False,
) -> ExplanationSet:
    """Explain each text's prediction with each method; one :class:`Explanation` per (text, method).

    ``target``: ``"prob"`` (default, the predicted label), ``"logit:positive"``, ``"log_odds:LABEL"``
    or a label; ``contrast="positive:negative"`` explains the logit difference.
    ``mixed_precision`` runs the passes under bfloat16 autocast (for GPUs).
    """
    if isinstance(texts, str):
        texts = [texts]
    if not methods:
        raise UserError("no method given")
    clf = load_model(model) if isinstance(model, str) else model
    if not isinstance(clf, Classifier):
        raise UserError(f"explain() needs a classifier; {clf.name} is a {clf.task}")
    tgt = target if isinstance(target, ClassTarget) else parse_target(target, contrast=contrast)
    if tgt.label:
        clf.label_index(tgt.label)
    if tgt.foil:
        clf.label_index(tgt.foil)
    params = dict(method_params or {})
    runners = [get_method(m, **params.get(m, {})) for m in methods]
    engine = Engine(
        clf,
        tgt,
        max_batch_tokens=max_batch_tokens,
        progress=progress,
        mixed_precision=mixed_precision,
    )
    items = engine.prepare(list(texts), truncation=truncation)
    out = []
    for runner in runners:
        out.extend(runner.attribute(engine, items, granularity))
    return ExplanationSet(_interleave(out, len(items), len(runners)))


def _interleave(results: list[Any], n_items: int, n_methods: int) -> list[Any]:
    """Method-major results → text-major order (text 0 all methods, text 1 all methods, …)."""
    return [results[m * n_items + i] for i in range(n_items) for m in range(n_methods)]
