"""ContextCite-style sparse linear surrogate over random ablations (Cohen-Wang et al., 2024).

``n_samples`` keep-masks over the features, each feature kept independently with probability
``keep_prob`` (ContextCite: 64 ablations, ½); the target of each ablated input (by default the
label's log-odds, ContextCite's "logit-probability") is regressed on the masks with a Lasso
(scikit-learn, ``alpha``, intercept) on standardised masks, and the coefficients, rescaled to
the 0/1 mask scale, are the scores: the estimated change of the target when the feature is
present rather than removed. Forward passes only: ``n_samples`` per text.

Removal (``replace``) is as in the perturbation methods: ``remove`` deletes the words and
re-tokenizes; ``mask`` / ``pad`` replace their tokens.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.methods.perturbation import REPLACE, _scores, evaluate_masks, feature_count
from explainlm.methods.retarget import check_score_target, retargeted


def text_key(text: str) -> int:
    """A seed part from the text, so an item's draws do not depend on its batch."""
    return zlib.crc32(text.encode())


def ablation_masks(d: int, n: int, keep_prob: float, seed: Any) -> np.ndarray:
    """``n`` random keep-masks over ``d`` features, each kept with probability ``keep_prob``."""
    rng = np.random.default_rng(seed)
    return rng.random((n, d)) < keep_prob


def lasso_surrogate(masks: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Lasso on standardised masks (as ContextCite), coefficients and intercept on the 0/1 scale.

    A feature that is constant over the masks gets 0 (nothing to learn from).
    """
    from sklearn.linear_model import Lasso

    x = masks.astype(np.float64)
    d = x.shape[1]
    if d == 0 or len(x) == 0:
        return np.zeros(d), float(np.mean(y)) if len(y) else 0.0
    mean, scale = x.mean(0), x.std(0)
    live = scale > 0
    coef = np.zeros(d)
    if not live.any():
        return coef, float(np.mean(y))
    z = (x[:, live] - mean[live]) / scale[live]
    model = Lasso(alpha=alpha, fit_intercept=True, random_state=0)
    model.fit(z, y)
    coef[live] = model.coef_ / scale[live]
    intercept = float(model.intercept_ - (mean[live] / scale[live]) @ model.coef_)
    return coef, intercept


class ContextCite(Method):
    """Lasso coefficients of the target on random feature ablations."""

    name = "context_cite"
    defaults = {
        "n_samples": 64,
        "keep_prob": 0.5,
        "alpha": 0.01,
        "target": "log_odds",
        "replace": "remove",
        "seed": 0,
    }
    citation = (
        "Cohen-Wang, Shah, Georgiev & Madry (2024), ContextCite: Attributing Model Generation "
        "to Context"
    )

    def validate(self) -> None:
        if int(self.params["n_samples"]) < 2:
            raise UserError("context_cite: n_samples must be ≥ 2")
        if not 0 < float(self.params["keep_prob"]) < 1:
            raise UserError("context_cite: keep_prob must be in (0, 1)")
        if float(self.params["alpha"]) < 0:
            raise UserError("context_cite: alpha must be ≥ 0")
        if self.params["replace"] not in REPLACE:
            raise UserError(f"context_cite: replace must be one of {', '.join(REPLACE)}")
        check_score_target(self.name, self.params["target"])

    def masks(self, d: int, key: int) -> np.ndarray:
        n, p = int(self.params["n_samples"]), float(self.params["keep_prob"])
        return ablation_masks(d, n, p, [int(self.params["seed"]), key])

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        masks = [self.masks(feature_count(it, granularity), text_key(it.text)) for it in items]
        with retargeted(engine, self.params["target"]) as eng:
            values = evaluate_masks(eng, items, masks, granularity, self.params["replace"])
        out = []
        for it, m, y in zip(items, masks, values, strict=True):
            coef, intercept = lasso_surrogate(m, y, float(self.params["alpha"]))
            res = _scores(it, granularity, coef)
            res["intercept"] = intercept
            out.append(res)
        return out
