"""Perturbation methods: occlusion (leave-one-out), LIME, KernelSHAP (exact for short inputs), and
a seeded random control. Features are word units (default) or the text's tokens.

Removing a feature means (``replace``): ``remove`` — the word is deleted from the text, which is
re-tokenized (token granularity: the token is deleted); ``mask`` / ``pad`` — its tokens are replaced
by the mask (or unknown) / padding token.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.methods.base import Method
from explainlm.models.words import remove_words
from explainlm.models.wrapper import Encoding, ModelWrapper

REPLACE = ("remove", "mask", "pad")


def feature_count(item: Item, granularity: str) -> int:
    enc = item.encoding
    return len(enc.word_spans) if granularity == "word" else len(enc.text_token_positions)


def replacement_id(wrapper: ModelWrapper, kind: str) -> int:
    """The token that stands in for a removed one: the mask (or unknown) token, or padding."""
    tok = wrapper.tokenizer
    if kind == "mask" and tok.mask_token_id is not None:
        return int(tok.mask_token_id)
    if kind == "mask" and tok.unk_token_id is not None:
        return int(tok.unk_token_id)
    return wrapper.pad_token_id


def mask_variants(
    wrapper: ModelWrapper,
    encodings: Sequence[Encoding],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
    encode: Callable[[list[str]], list[Encoding]],
) -> list[list[Encoding]]:
    """The variant encodings of each encoding under each keep-mask over its features.

    Word granularity with ``remove``: the words are deleted from the text, which ``encode``
    re-tokenizes (inside the task's template). Otherwise the features' tokens are deleted or replaced
    by :func:`replacement_id` in place.
    """
    out: list[list[Encoding]] = []
    for enc, m in zip(encodings, masks, strict=True):
        if replace == "remove" and granularity == "word":
            texts = [remove_words(enc.text, enc.word_spans, row) for row in m]
            out.append(encode(texts) if texts else [])
            continue
        ids = np.asarray(enc.input_ids)
        if granularity == "word":
            owner = np.asarray(enc.word_ids)  # feature of each token (-1 = not a feature)
            owner = np.where(np.asarray(enc.special), -1, owner)
        else:
            owner = np.full(len(ids), -1)
            owner[enc.text_token_positions] = np.arange(len(enc.text_token_positions))
        rows = []
        for row in m:
            dropped = (owner >= 0) & ~np.append(row, True)[owner]
            if replace == "remove":
                new_ids = ids[~dropped].tolist()
            else:
                new_ids = np.where(dropped, replacement_id(wrapper, replace), ids).tolist()
            rows.append(dataclasses.replace(enc, input_ids=new_ids))
        out.append(rows)
    return out


def evaluate_masks(
    engine: Engine,
    items: Sequence[Item],
    masks: Sequence[np.ndarray],
    granularity: str,
    replace: str,
) -> list[np.ndarray]:
    """Target values of each item under each keep-mask (rows: variants; columns: features)."""

    def encode(texts: list[str]) -> list[Encoding]:
        return engine.classifier.encode(texts, allow_empty=True)

    variants = mask_variants(
        engine.wrapper, [it.encoding for it in items], masks, granularity, replace, encode
    )
    return engine.score_encodings(items, variants)


class _Perturbation(Method):
    def validate(self) -> None:
        if self.params.get("replace", "remove") not in REPLACE:
            raise UserError(f"{self.name}: replace must be one of {', '.join(REPLACE)}")


class Occlusion(_Perturbation):
    """Leave-one-out: score_j = f(x) − f(x without feature j) (Li et al., 2016)."""

    name = "occlusion"
    defaults = {"replace": "remove"}
    citation = (
        "Li, Monroe & Jurafsky (2016), Understanding Neural Networks through Representation Erasure"
    )

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        masks = [~np.eye(feature_count(it, granularity), dtype=bool) for it in items]
        values = evaluate_masks(engine, items, masks, granularity, self.params["replace"])
        return [
            _scores(it, granularity, it.target_value - v)
            for it, v in zip(items, values, strict=True)
        ]


def _scores(item: Item, granularity: str, feature_scores: np.ndarray) -> dict[str, Any]:
    if granularity == "word":
        return {"word_scores": feature_scores}
    full = np.zeros(len(item.encoding))
    full[item.encoding.text_token_positions] = feature_scores
    return {"token_scores": full}


class Lime(_Perturbation):
    """LIME (Ribeiro et al., 2016) with the text explainer's sampling and kernel.

    Samples: the full input, then ``n_samples − 1`` masks that remove a uniformly drawn number of
    features (1..d) at random. Weights: exp(−D²/width²)^½ with D the cosine distance (×100) to the full
    input. Scores: coefficients of a weighted ridge regression (scikit-learn, α = ``alpha``).
    """

    name = "lime"
    defaults = {
        "n_samples": 1000,
        "kernel_width": 25.0,
        "alpha": 1.0,
        "seed": 0,
        "replace": "remove",
    }
    citation = "Ribeiro, Singh & Guestrin (2016), 'Why Should I Trust You?'"

    def masks(self, d: int, key: int) -> np.ndarray:
        """LIME's text sampling: the full input, then masks removing 1..d random features."""
        return lime_masks(d, int(self.params["n_samples"]), [int(self.params["seed"]), key])

    def fit(self, masks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
        """Weighted ridge coefficients (the scores) and the fit's weighted R²."""
        return lime_fit(
            masks, values, float(self.params["kernel_width"]), float(self.params["alpha"])
        )

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        masks = [self.masks(feature_count(it, granularity), it.index) for it in items]
        values = evaluate_masks(engine, items, masks, granularity, self.params["replace"])
        out = []
        for it, m, y in zip(items, masks, values, strict=True):
            coef, score = self.fit(m, y)
            res = _scores(it, granularity, coef)
            res["score"] = score
            out.append(res)
        return out


def lime_masks(d: int, n: int, seed: Any) -> np.ndarray:
    """The full input, then ``n − 1`` masks each removing a uniform number (1..d) of features."""
    rng = np.random.default_rng(seed)
    m = np.ones((n, d), dtype=bool)
    for row in m[1:]:
        k = rng.integers(1, d + 1) if d else 0
        row[rng.choice(d, size=k, replace=False)] = False
    return m


def lime_fit(
    masks: np.ndarray, y: np.ndarray, width: float, alpha: float
) -> tuple[np.ndarray, float]:
    """LIME's kernel (cosine distance × 100, width ``width``) and a weighted ridge regression."""
    from sklearn.linear_model import Ridge

    x = masks.astype(np.float64)
    if x.shape[1] == 0:
        return np.zeros(0), 1.0
    norms = np.linalg.norm(x, axis=1) * math.sqrt(x.shape[1])
    cos = np.divide(x.sum(1), norms, out=np.zeros(len(x)), where=norms > 0)
    dist = (1 - cos) * 100
    weights = np.sqrt(np.exp(-(dist**2) / width**2))
    model = Ridge(alpha=alpha, fit_intercept=True)
    model.fit(x, y, sample_weight=weights)
    return model.coef_, float(model.score(x, y, sample_weight=weights))


def shapley_exact(values: dict[tuple[bool, ...], float], d: int) -> np.ndarray:
    """Exact Shapley values from f on every coalition (keys: keep-masks)."""
    phi = np.zeros(d)
    fact = [math.factorial(k) for k in range(d + 1)]
    for mask, v in values.items():
        s = sum(mask)
        for i in range(d):
            if mask[i]:  # v is f(S ∪ {i}) with |S| = s − 1
                phi[i] += fact[s - 1] * fact[d - s] / fact[d] * v
            else:  # v is f(S) with |S| = s, i ∉ S
                phi[i] -= fact[s] * fact[d - s - 1] / fact[d] * v
    return phi


def kernel_shap_regression(
    masks: np.ndarray, y: np.ndarray, f_empty: float, f_full: float, *, sampled: bool = True
) -> np.ndarray:
    """Shapley-kernel weighted least squares with the efficiency constraint (Lundberg & Lee, 2017).

    ``sampled=True``: the coalitions were drawn with probability ∝ the Shapley kernel, so each one
    counts once (uniform weights); ``False``: the kernel weights are applied to the given coalitions.
    """
    d = masks.shape[1]
    z = masks.astype(np.float64)
    sizes = z.sum(1)
    keep = (sizes > 0) & (sizes < d)
    z, y, sizes = z[keep], y[keep], sizes[keep]
    if sampled:
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


class KernelShap(_Perturbation):
    """Shapley values of the features, with absent features removed (Lundberg & Lee, 2017).

    Exact enumeration of all 2^d coalitions when d ≤ ``exact_max_features`` (default 12); otherwise
    KernelSHAP: ``n_samples`` coalitions drawn (seeded, paired) by the Shapley kernel's size
    distribution and a constrained weighted regression.
    """

    name = "kernel_shap"
    defaults = {"n_samples": None, "exact_max_features": 12, "seed": 0, "replace": "remove"}
    citation = "Lundberg & Lee (2017), A Unified Approach to Interpreting Model Predictions"

    def masks(self, d: int, seed: int) -> tuple[np.ndarray, bool]:
        """All 2^d coalitions (exact), or seeded paired samples whose rows 0 and 1 are ∅ and all."""
        if d <= int(self.params["exact_max_features"]):
            full = itertools.product([False, True], repeat=d)
            return np.array(list(full), dtype=bool).reshape(-1, d), True
        n = int(self.params["n_samples"] or 2 * d + 2048)
        rng = np.random.default_rng(seed)
        sizes = np.arange(1, d)
        p = (d - 1) / (sizes * (d - sizes))
        p = p / p.sum()
        rows = [np.zeros(d, dtype=bool), np.ones(d, dtype=bool)]
        while len(rows) < n:
            k = rng.choice(sizes, p=p)
            row = np.zeros(d, dtype=bool)
            row[rng.choice(d, size=k, replace=False)] = True
            rows += [row, ~row]  # paired sampling
        return np.array(rows[:n]), False

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        plans = []
        for it in items:
            d = feature_count(it, granularity)
            plans.append(self.masks(d, int(self.params["seed"]) + it.index))
        values = evaluate_masks(
            engine, items, [m for m, _ in plans], granularity, self.params["replace"]
        )
        out = []
        for it, (m, exact), y in zip(items, plans, values, strict=True):
            res = _scores(it, granularity, shapley_values(m, y, exact))
            res["exact"] = exact
            out.append(res)
        return out


def shapley_values(masks: np.ndarray, y: np.ndarray, exact: bool) -> np.ndarray:
    """Shapley values from f on planned coalitions (exact, or sampled with ∅ and all first)."""
    d = masks.shape[1]
    if d == 0:
        return np.zeros(0)
    if exact:
        return shapley_exact({tuple(row): float(v) for row, v in zip(masks, y, strict=True)}, d)
    return kernel_shap_regression(masks, y, float(y[0]), float(y[1]))


class RandomScores(Method):
    """A seeded random control: standard normal scores per unit."""

    name = "random"
    defaults = {"seed": 0}
    citation = "a baseline every faithfulness metric should beat"

    def _attribute(
        self, engine: Engine, items: Sequence[Item], granularity: str
    ) -> list[dict[str, Any]]:
        out = []
        for it in items:
            rng = np.random.default_rng([int(self.params["seed"]), it.index])
            if granularity == "word":
                out.append({"word_scores": rng.standard_normal(len(it.encoding.word_spans))})
            else:
                scores = rng.standard_normal(len(it.encoding))
                scores[np.asarray(it.encoding.special)] = 0.0
                out.append({"token_scores": scores})
        return out
