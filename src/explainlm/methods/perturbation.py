"""Perturbation methods: occlusion (leave-one-out), LIME, KernelSHAP (exact for short inputs), and
a seeded random control.

Each plans keep-masks over an item's features (word units by default, or the text's tokens), the
engine scores them against its target (one column per output: the class target, or every
generated token), and the method reduces each output's column. How a removed feature is removed is
``replace`` (see :mod:`explainlm.engine.masks`). For generation, occlusion also removes earlier
generated tokens; LIME and KernelSHAP attribute the prompt's units (one set of coalitions serves
every generated token, which keeps the earlier generated tokens as they are).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.configurable import Param
from explainlm.engine import Attribution, AttributionEngine, Engine, Item
from explainlm.engine.masks import REPLACE, encoding_features, mask_variants, replacement_id
from explainlm.methods.base import Method, register_method
from explainlm.methods.shapley_sampling import SAMPLING, kernel_coalitions, leverage_coalitions
from explainlm.models.wrapper import Encoding

__all__ = [
    "REPLACE",
    "KernelShap",
    "Lime",
    "Occlusion",
    "RandomScores",
    "evaluate_masks",
    "feature_count",
    "mask_variants",
    "replacement_id",
]

REPLACE_PARAM = Param(
    "remove",
    choices=REPLACE,
    help="how a feature is removed: deleted (remove), or its tokens replaced by the mask/unknown "
    "token (mask) or the padding token (pad)",
)
SEED_PARAM = Param(0, int, ge=0, help="random seed (combined with each text's identity)")


def feature_count(item: Item, granularity: str) -> int:
    """Features of a classification item (its word units, or its text tokens)."""
    return encoding_features(item.encoding, granularity)


def _scores(item: Item, granularity: str, feature_scores: np.ndarray) -> dict[str, Any]:
    """Deprecated (the earlier contract): feature scores as ``word_scores`` / ``token_scores``."""
    if granularity == "word":
        return {"word_scores": feature_scores}
    full = np.zeros(len(item.encoding))
    full[item.encoding.text_token_positions] = feature_scores
    return {"token_scores": full}


def evaluate_masks(
    engine: Engine,
    items: Sequence[Item],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
) -> list[np.ndarray]:
    """Target values of each classification item under each keep-mask (a vector per item).

    The path the evaluation metrics take (any object with ``wrapper``, ``classifier.encode`` and
    ``score_encodings`` serves); methods use the engine's :meth:`score_masks`.
    """

    def encode(texts: list[str]) -> list[Encoding]:
        return engine.classifier.encode(texts, allow_empty=True)

    variants = mask_variants(
        engine.wrapper, [it.encoding for it in items], masks, granularity, replace, encode
    )
    return engine.score_encodings(items, variants)


@register_method
class Occlusion(Method):
    """Leave-one-out: score_j = f(x) − f(x without feature j) (Li et al., 2016)."""

    name = "occlusion"
    schema = {"replace": REPLACE_PARAM}
    requires = ("masks",)
    citation = (
        "Li, Monroe & Jurafsky (2016), Understanding Neural Networks through Representation Erasure"
    )

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        masks = [~np.eye(engine.feature_count(it, granularity), dtype=bool) for it in items]
        values = engine.score_masks(items, masks, granularity, self.params["replace"])
        return [
            Attribution((engine.full_values(it)[None, :] - v).T)
            for it, v in zip(items, values, strict=True)
        ]


@register_method
class Lime(Method):
    """LIME (Ribeiro et al., 2016) with the text explainer's sampling and kernel.

    Samples: the full input, then ``n_samples − 1`` masks that remove a uniformly drawn number of
    features (1..d) at random. Weights: exp(−D²/width²)^½ with D the cosine distance (×100) to the
    full input. Scores: coefficients of a weighted ridge regression (scikit-learn, α = ``alpha``),
    one per output; the fit's weighted R² is kept as the diagnostic ``r2``.
    """

    name = "lime"
    schema = {
        "n_samples": Param(1000, int, ge=2, help="perturbed samples (the first is the input)"),
        "kernel_width": Param(25.0, float, gt=0, help="width of the exponential kernel"),
        "alpha": Param(1.0, float, ge=0, help="ridge regularisation strength"),
        "seed": SEED_PARAM,
        "replace": REPLACE_PARAM,
    }
    requires = ("masks",)
    citation = "Ribeiro, Singh & Guestrin (2016), 'Why Should I Trust You?'"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        n = int(self.params["n_samples"])
        masks = [
            lime_masks(engine.feature_count(it, granularity, shared=True), n, self.rng(engine, it))
            for it in items
        ]
        values = engine.score_masks(items, masks, granularity, self.params["replace"])
        width, alpha = float(self.params["kernel_width"]), float(self.params["alpha"])
        out = []
        for m, y in zip(masks, values, strict=True):
            coef, r2 = lime_fit(m, y, width, alpha)
            out.append(Attribution(coef, per_output={"r2": r2}, diagnostics={"n_samples": len(m)}))
        return out


def lime_masks(d: int, n: int, seed: Any) -> np.ndarray:
    """The full input, then ``n − 1`` masks each removing a uniform number (1..d) of features."""
    rng = np.random.default_rng(seed)
    m = np.ones((n, d), dtype=bool)
    for row in m[1:]:
        k = rng.integers(1, d + 1) if d else 0
        row[rng.choice(d, size=k, replace=False)] = False
    return m


def lime_fit(masks: np.ndarray, y: np.ndarray, width: float, alpha: float) -> tuple[Any, Any]:
    """LIME's kernel (cosine distance × 100, width ``width``) and a weighted ridge regression.

    ``y`` ``[n]`` gives ``(coefficients [d], R²)``; ``y`` ``[n, k]`` (one column per output) gives
    ``(coefficients [k, d], R² [k])`` (ridge fits each column on its own).
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    x = masks.astype(np.float64)
    y = np.asarray(y, dtype=np.float64)
    k = 1 if y.ndim == 1 else y.shape[1]
    if x.shape[1] == 0:
        return (np.zeros(0), 1.0) if y.ndim == 1 else (np.zeros((k, 0)), np.ones(k))
    norms = np.linalg.norm(x, axis=1) * math.sqrt(x.shape[1])
    cos = np.divide(x.sum(1), norms, out=np.zeros(len(x)), where=norms > 0)
    dist = (1 - cos) * 100
    weights = np.sqrt(np.exp(-(dist**2) / width**2))
    model = Ridge(alpha=alpha, fit_intercept=True)
    model.fit(x, y, sample_weight=weights)
    r2 = r2_score(y, model.predict(x), sample_weight=weights, multioutput="raw_values")
    if y.ndim == 1:
        return model.coef_, float(r2[0])
    return model.coef_.reshape(k, -1), np.asarray(r2, dtype=np.float64)


def shapley_from_coalitions(masks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact Shapley values from f on all 2^d coalitions (rows of ``masks``; ``y`` [n] or [n, k]).

    φ_i = Σ_S |S|!(d−|S|−1)!/d! (f(S ∪ i) − f(S)): each coalition's value enters once with a
    plus sign for its members and once with a minus sign for the others.
    """
    d = masks.shape[1]
    sizes = masks.sum(1)
    fact = np.array([math.factorial(s) for s in range(d + 1)], dtype=np.float64)
    plus = np.where(sizes > 0, fact[np.maximum(sizes - 1, 0)] * fact[d - sizes], 0.0) / fact[d]
    minus = np.where(sizes < d, fact[sizes] * fact[np.maximum(d - sizes - 1, 0)], 0.0) / fact[d]
    y2 = np.asarray(y, dtype=np.float64).reshape(len(masks), -1)
    z = masks.astype(np.float64)
    phi = z.T @ (plus[:, None] * y2) - (1 - z).T @ (minus[:, None] * y2)
    return phi[:, 0] if np.ndim(y) == 1 else phi.T


def shapley_exact(values: dict[tuple[bool, ...], float], d: int) -> np.ndarray:
    """Exact Shapley values from f on every coalition (keys: keep-masks)."""
    masks = np.array(list(values), dtype=bool).reshape(-1, d)
    return shapley_from_coalitions(masks, np.array(list(values.values()), dtype=np.float64))


def kernel_shap_regression(
    masks: np.ndarray,
    y: np.ndarray,
    f_empty: float,
    f_full: float,
    *,
    sampled: bool = True,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Shapley-kernel weighted least squares with the efficiency constraint (Lundberg & Lee, 2017).

    ``weights`` (one per row): the regression weight of each row (leverage sampling's kernel weight
    over inclusion probability). Else ``sampled=True``: the coalitions were drawn with probability
    ∝ the Shapley kernel, so each one counts once (uniform weights); ``False``: the kernel weights
    are applied to the given coalitions.
    """
    d = masks.shape[1]
    z = masks.astype(np.float64)
    sizes = z.sum(1)
    keep = (sizes > 0) & (sizes < d)
    z, y, sizes = z[keep], y[keep], sizes[keep]
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)[keep]
    elif sampled:
        w = np.ones(len(z))
    else:
        w = (d - 1) / (np.array([math.comb(d, int(s)) for s in sizes]) * sizes * (d - sizes))
    # eliminate the last feature: φ_d = (f_full − f_empty) − Σ_{i<d} φ_i
    total = f_full - f_empty
    target = y - f_empty - z[:, -1] * total
    design = z[:, :-1] - z[:, -1:]
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * sw[:, None], target * sw, rcond=None)
    return np.append(coef, total - coef.sum())


@register_method
class KernelShap(Method):
    """Shapley values of the features, with absent features removed (Lundberg & Lee, 2017).

    Exact enumeration of all 2^d coalitions when d ≤ ``exact_max_features`` (default 12); otherwise
    KernelSHAP: ``n_samples`` coalitions (seeded, paired) drawn by ``sampling`` — ``leverage``
    (default; Musco & Witter, 2025: sizes evenly, without replacement, Horvitz–Thompson weights) or
    ``kernel`` (i.i.d. by the Shapley kernel's size distribution) — and a constrained weighted
    regression (:mod:`explainlm.methods.shapley_sampling`). Diagnostics: ``exact``,
    ``n_coalitions`` and ``sampling``.
    """

    name = "kernel_shap"
    schema = {
        "n_samples": Param(
            None, int, ge=4, nullable=True, help="coalitions sampled when not exact (2d + 2048)"
        ),
        "exact_max_features": Param(12, int, ge=0, le=20, help="enumerate all coalitions up to"),
        "sampling": Param(
            "leverage", choices=SAMPLING, help="coalition sampling when not exact (see docs)"
        ),
        "seed": SEED_PARAM,
        "replace": REPLACE_PARAM,
    }
    requires = ("masks",)
    citation = "Lundberg & Lee (2017), A Unified Approach to Interpreting Model Predictions"

    def coalitions(
        self, d: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None, bool]:
        """All 2^d coalitions (exact), or seeded paired samples whose rows 0 and 1 are ∅ and all,
        with each row's regression weight."""
        if d <= max(int(self.params["exact_max_features"]), 1):  # one feature: nothing to sample
            full = itertools.product([False, True], repeat=d)
            return np.array(list(full), dtype=bool).reshape(-1, d), None, True
        n = int(self.params["n_samples"] or 2 * d + 2048)
        if self.params["sampling"] == "kernel":
            m, _ = kernel_coalitions(d, n, rng)
            return m, None, False
        m, w = leverage_coalitions(d, n, rng)
        return m, w, False

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        plans = [
            self.coalitions(
                engine.feature_count(it, granularity, shared=True), self.rng(engine, it)
            )
            for it in items
        ]
        values = engine.score_masks(
            items, [m for m, _, _ in plans], granularity, self.params["replace"]
        )
        out = []
        for (m, w, exact), y in zip(plans, values, strict=True):
            phi = np.stack([shapley_values(m, y[:, o], exact, w) for o in range(y.shape[1])])
            diag = {"exact": exact, "n_coalitions": len(m)}
            if not exact:
                diag["sampling"] = self.params["sampling"]
            out.append(Attribution(phi, diagnostics=diag))
        return out


def shapley_values(
    masks: np.ndarray, y: np.ndarray, exact: bool, weights: np.ndarray | None = None
) -> np.ndarray:
    """Shapley values from f on planned coalitions (exact, or sampled with ∅ and all first;
    ``weights``: each row's regression weight, else uniform)."""
    d = masks.shape[1]
    if d == 0:
        return np.zeros(0)
    if exact:
        return shapley_from_coalitions(masks, y)
    return kernel_shap_regression(masks, y, float(y[0]), float(y[1]), weights=weights)


@register_method
class RandomScores(Method):
    """A seeded random control: standard normal scores per feature and output."""

    name = "random"
    schema = {"seed": SEED_PARAM}
    citation = "a baseline every faithfulness metric should beat"

    def compute(
        self, engine: AttributionEngine, items: Sequence[Any], granularity: str
    ) -> list[Attribution]:
        return [
            Attribution(
                self.rng(engine, it).standard_normal(
                    (engine.n_outputs(it), engine.feature_count(it, granularity))
                )
            )
            for it in items
        ]
