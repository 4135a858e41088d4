"""Loading a black-box classifier from a spec: a URL (an HTTP endpoint), a pickled scikit-learn
estimator, or ``module:attribute`` (see :mod:`explainlm.models.blackbox`).

>>> is_blackbox_spec("https://example.org/predict"), is_blackbox_spec("smollm2-135m")
(True, False)
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explainlm.errors import UserError
from explainlm.models.blackbox import BlackBoxClassifier
from explainlm.models.classifiers import Classifier
from explainlm.models.endpoint import HttpClassifier

__all__ = ["is_blackbox_spec", "load_blackbox"]


def is_blackbox_spec(spec: str) -> bool:
    """True for what :func:`load_blackbox` loads: URLs, pickled estimators, ``module:attribute``."""
    s = str(spec)
    if s.startswith(("http://", "https://")):
        return True
    if Path(s).suffix in (".joblib", ".pkl", ".pickle"):
        return True
    mod, sep, attr = s.partition(":")
    return bool(sep) and mod.replace(".", "").replace("_", "").isalnum() and attr.isidentifier()


def load_blackbox(spec: str, labels: Sequence[str] | None = None, **options: Any) -> Classifier:
    """A black-box classifier from a URL, a pickled scikit-learn estimator, or ``module:attr``.

    ``module:attr`` names a fitted estimator with ``predict_proba``, or a function
    ``texts -> probabilities`` (then ``labels`` is required). Loading a pickle runs code from it:
    only load files you trust.
    """
    s = str(spec)
    if s.startswith(("http://", "https://")):
        return HttpClassifier(s, labels, **options)
    if Path(s).suffix in (".joblib", ".pkl", ".pickle"):
        p = Path(s).expanduser()
        if not p.is_file():
            raise UserError(f"model file not found: {p}")
        import joblib

        return BlackBoxClassifier.from_sklearn(joblib.load(p), labels, name=p.name, **options)
    mod, _, attr = s.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot import {s}: {e}") from None
    if hasattr(obj, "predict_proba"):
        return BlackBoxClassifier.from_sklearn(obj, labels, name=s, **options)
    if not callable(obj):
        raise UserError(f"{s} is neither an estimator with predict_proba nor a function")
    if not labels:
        raise UserError(f"{s} is a function: give its labels (in the order of its columns)")
    return BlackBoxClassifier(obj, labels, name=s, **options)
