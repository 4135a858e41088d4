"""``explain()``: the one-call API over the engine and the method registry.

>>> from explainlm import explain
>>> res = explain(["A wonderful, touching film."], "smollm2-135m",
...               methods=["occlusion", "integrated_gradients"])    # doctest: +SKIP
>>> res[0].top(2)                                                    # doctest: +SKIP
[('wonderful', 0.41), ('touching', 0.22)]
>>> res[0].check["comprehensiveness"], res[0].check["random"]["comprehensiveness"]  # doctest: +SKIP
(0.31, 0.06)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from explainlm.check import CheckConfig, as_check_config, attach_checks
from explainlm.engine import Engine
from explainlm.engine.masks import check_granularity
from explainlm.errors import UserError
from explainlm.explanation import ExplanationSet
from explainlm.methods import get_method
from explainlm.models import Classifier, load_model
from explainlm.models.precision import PrecisionPlan, check_precision
from explainlm.progress import Progress
from explainlm.targets import ClassTarget, parse_target

T = TypeVar("T")


def explain(
    texts: Sequence[str] | str,
    model: str | Classifier = "smollm2-135m",
    methods: Sequence[str] = ("auto",),
    *,
    target: str | ClassTarget | None = None,
    contrast: str | None = None,
    granularity: str = "word",
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    max_batch_tokens: int | None = None,
    truncation: bool = True,
    progress: Progress | bool | None = None,
    mixed_precision: bool = False,
    check: bool | CheckConfig = True,
    precision: str | PrecisionPlan = "auto",
) -> ExplanationSet:
    """Explain each text's prediction with each method; one :class:`Explanation` per (text, method).

    ``methods`` defaults to ``["auto"]``: the most faithful affordable method for this model and
    each text, chosen by the faithfulness check, with the reason in ``Explanation.auto`` (see
    :mod:`explainlm.methods.auto` and ``docs/trust.md``).

    ``target``: ``"prob"`` (default, the predicted label), ``"logit:positive"``, ``"log_odds:LABEL"``
    or a label; ``contrast="positive:negative"`` explains the logit difference.
    ``precision``: ``auto`` (default: bf16 and int8 where a one-time measurement on this machine
    finds them faster, see docs/performance.md), ``fp32``, ``bf16`` or ``int8`` (forward passes;
    gradients in fp32); each explanation records it in ``diagnostics["precision"]``.
    ``max_batch_tokens=None``: the measured pass size (``auto``) or the default.
    ``mixed_precision`` (earlier spelling) runs every pass under bfloat16 autocast. ``progress``: a
    :class:`~explainlm.progress.Progress` (``True``: a terminal bar). ``check`` (default on)
    computes each explanation's faithfulness check (:mod:`explainlm.check`) into ``.check``.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not methods:
        raise UserError("no method given")
    check_granularity(granularity)
    if not isinstance(precision, PrecisionPlan):
        check_precision(precision)
    params = dict(method_params or {})
    runners = [get_method(m, **params.get(m, {})) for m in methods]
    config = as_check_config(check)
    clf = load_model(model) if isinstance(model, str) else model
    if not isinstance(clf, Classifier):
        raise UserError(f"explain() needs a classifier; {clf.name} is a {clf.task}")
    tgt = target if isinstance(target, ClassTarget) else parse_target(target, contrast=contrast)
    if tgt.label:
        clf.label_index(tgt.label)
    if tgt.foil:
        clf.label_index(tgt.foil)
    engine = Engine(
        clf,
        tgt,
        max_batch_tokens=max_batch_tokens,
        progress=progress,
        mixed_precision=mixed_precision,
        reuse_scores=config is not None,
        precision=precision,
    )
    for r in runners:
        engine.check_method(r)
    items = engine.prepare(list(texts), truncation=truncation)
    per_method = [r.attribute(engine, items, granularity) for r in runners]
    if config is not None:
        attach_checks(engine, items, per_method, granularity, config)
    return ExplanationSet(text_major(per_method))


def text_major(per_method: Sequence[Sequence[T]]) -> list[T]:
    """Method-major results → text-major order (text 0 all methods, text 1 all methods, …)."""
    return [res[i] for i in range(len(per_method[0]) if per_method else 0) for res in per_method]
