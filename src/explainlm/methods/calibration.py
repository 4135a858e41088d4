"""Per-model calibration of ``method="auto"``: how faithful each candidate method is on this model.

Each candidate explains the predicted label of :data:`CALIBRATION_TEXTS` (ten short, varied
sentences) and gets the faithfulness check of :mod:`explainlm.check`. Per method the calibration
keeps the mean comprehensiveness, the mean of the random ranking's, their paired difference
(``gain``) with a 95% percentile-bootstrap CI over the texts (2,000 resamples, seed 0), the mean
drop when the top 20% of words are removed, and the measured seconds per text. A method
**passes** when the lower end of its gain's CI is above 0 (it beats a random ranking on this
model with 95% confidence).

A calibration is identified by the model's identity (:func:`model_key`: its name, task, labels,
template and a fingerprint of its weights), computed once per process and remembered
(:func:`remember`, :func:`known`); the services also store it in the run store (a ``calibrate``
run) and reuse it across processes until asked to refresh it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from explainlm.check import CheckConfig, attach_checks
from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.methods.base import get_method
from explainlm.report.trust import drop_at

CALIBRATION_TEXTS = (
    "This movie was wonderful, touching and funny.",
    "A dull, lifeless and badly acted waste of two hours.",
    "The service was slow but the food was excellent.",
    "I would not recommend this product to anyone.",
    "The new policy was announced by the city council on Monday.",
    "Honestly, the ending ruined what was otherwise a decent story.",
    "Great value, fast delivery, and it works exactly as described.",
    "The hotel room was dirty and the staff were rude.",
    "Scientists found no evidence that the drug improves memory.",
    "What a brilliant, moving and beautifully shot film.",
)
CANDIDATES = ("context_cite", "occlusion", "integrated_gradients", "grad_x_input", "attention")
CANDIDATE_PARAMS: dict[str, dict[str, Any]] = {"integrated_gradients": {"steps": 32}}
_KNOWN: dict[str, Calibration] = {}


@dataclass
class Calibration:
    """The calibration of one model: one row per candidate method (see the module docstring)."""

    model_key: str
    model: str
    methods: list[dict[str, Any]]
    n_texts: int
    seconds: float = 0.0
    created: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def row(self, method: str) -> dict[str, Any] | None:
        return next((r for r in self.methods if r["method"] == method), None)

    def ranked(self) -> list[dict[str, Any]]:
        """Passing methods by mean comprehensiveness (highest first), then the failing ones."""
        return sorted(
            self.methods,
            key=lambda r: (
                not r["passes"],
                -round(r["comprehensiveness"], 2),  # within 0.005: the cheaper method first
                r.get("seconds_per_text", 0.0),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def model_key(classifier: Any) -> str:
    """The identity of a model as a task: name, description (labels, template, verbalizers) and a
    fingerprint of its weights (a strided sample of every parameter), so a retrained model in the
    same directory gets a new calibration."""
    import torch

    h = hashlib.sha1()
    h.update(json.dumps(classifier.describe(), sort_keys=True, default=str).encode())
    model = getattr(getattr(classifier, "wrapper", None), "model", None)
    params = model.named_parameters() if hasattr(model, "named_parameters") else []
    with torch.no_grad():
        for name, p in params:
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 64)].double()
            h.update(f"{name}{tuple(p.shape)}{float(sample.sum()):.6e}".encode())
    return h.hexdigest()[:16]


def remember(calibration: Calibration) -> None:
    """Keep a calibration for this process (what ``auto`` looks up first)."""
    _KNOWN[calibration.model_key] = calibration


def known(key: str) -> Calibration | None:
    return _KNOWN.get(key)


def forget(key: str | None = None) -> None:
    """Drop one remembered calibration (or all)."""
    if key is None:
        _KNOWN.clear()
    else:
        _KNOWN.pop(key, None)


def bootstrap_ci(diffs: Sequence[float], resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile-bootstrap CI of the mean of paired differences."""
    x = np.asarray(diffs, dtype=float)
    if x.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def calibrate(
    classifier: Any,
    candidates: Sequence[str] = CANDIDATES,
    texts: Sequence[str] = CALIBRATION_TEXTS,
    *,
    max_batch_tokens: int | None = None,
    progress: Any = None,
    cancel_check: Callable[[], None] | None = None,
) -> Calibration:
    """Explain ``texts`` with every candidate and summarise each one's check (module docstring).

    ``cancel_check`` is called before each candidate and before the checks (it raises to stop).
    """
    stop = cancel_check or (lambda: None)
    start = time.perf_counter()
    opts = {"max_batch_tokens": max_batch_tokens} if max_batch_tokens else {}
    engine = Engine(classifier, progress=progress, reuse_scores=True, **opts)
    items = engine.prepare(list(texts))
    rows = []
    per_method = []
    for name in candidates:
        stop()
        t0 = time.perf_counter()
        try:
            res = get_method(name, **CANDIDATE_PARAMS.get(name, {})).attribute(engine, items)
        except (UserError, NotImplementedError):  # e.g. gradients of a black-box model
            continue
        per_method.append(res)
        rows.append({"method": name, "seconds_per_text": (time.perf_counter() - t0) / len(items)})
    stop()
    attach_checks(engine, items, per_method, "word", CheckConfig())
    for row, results in zip(rows, per_method, strict=True):
        row.update(_summary(results))
    return Calibration(
        model_key(classifier),
        classifier.name,
        rows,
        len(items),
        seconds=time.perf_counter() - start,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        params={"candidates": list(candidates), "method_params": CANDIDATE_PARAMS},
    )


def _summary(results: Sequence[Any]) -> dict[str, Any]:
    comp = [r.check["comprehensiveness"] for r in results]
    rand = [r.check["random"]["comprehensiveness"] for r in results]
    drops = [drop_at(r.check, len(r.feature_scores())) for r in results]
    gain = [c - b for c, b in zip(comp, rand, strict=True)]
    ci = bootstrap_ci(gain)
    return {
        "comprehensiveness": float(np.mean(comp)),
        "random": float(np.mean(rand)),
        "gain": float(np.mean(gain)),
        "gain_ci": ci,
        "drop_top20": float(np.mean([d for d in drops if d is not None] or [0.0])),
        "passes": bool(ci[0] > 0),
    }
