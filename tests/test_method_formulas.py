"""Methods on a stand-in engine whose target is a known formula of the keep-mask: LIME, KernelSHAP
and occlusion against closed forms, the contract's output columns, and the diagnostics."""

from __future__ import annotations

import contextlib
import itertools
import math

import numpy as np
import pytest

from explainlm.engine.contract import stable_key
from explainlm.methods import get_method


class FormulaEngine:
    """Implements the engine side of the contract for ``f(mask) -> [n_outputs]`` on ``d`` features."""

    kind = "classification"

    def __init__(self, f, d: int, n_outputs: int = 1) -> None:
        self.f, self.d, self.k = f, d, n_outputs
        self.seen: list[np.ndarray] = []

    def feature_count(self, item, granularity, *, shared=False):
        return self.d

    def n_outputs(self, item):
        return self.k

    def item_key(self, item):
        return stable_key(item)

    def full_values(self, item):
        return np.atleast_1d(self.f(np.ones(self.d, dtype=bool))).astype(float)

    def score_masks(self, items, masks, granularity, replace="remove"):
        self.seen = [np.asarray(m) for m in masks]
        return [np.array([np.atleast_1d(self.f(row)) for row in m], dtype=float) for m in masks]

    def labelled(self, label, method=None):
        return contextlib.nullcontext()

    def check_method(self, method):
        pass

    def result(self, item, method, attribution, granularity, seconds):
        return attribution


def lime_reference(masks: np.ndarray, y: np.ndarray, width: float) -> tuple[np.ndarray, float]:
    """Weighted least squares with an intercept (no ridge penalty) by the normal equations, and
    the weighted R², with LIME's kernel on the cosine distance × 100."""
    x = masks.astype(float)
    norms = np.linalg.norm(x, axis=1) * math.sqrt(x.shape[1])
    cos = np.array([s / n if n else 0.0 for s, n in zip(x.sum(1), norms, strict=True)])  # ∅: 1
    w = np.sqrt(np.exp(-(((1 - cos) * 100) ** 2) / width**2))
    a = np.hstack([np.ones((len(x), 1)), x])
    beta = np.linalg.solve(a.T @ (w[:, None] * a), a.T @ (w * y))
    pred = a @ beta
    mean = (w * y).sum() / w.sum()
    r2 = 1 - (w * (y - pred) ** 2).sum() / (w * (y - mean) ** 2).sum()
    return beta[1:], float(r2)


def test_lime_recovers_a_linear_target_and_reports_its_fit() -> None:
    weights = np.array([0.5, -1.0, 2.0, 0.0, 0.25, 1.5])
    linear = FormulaEngine(lambda m: weights @ m + 0.1, 6)
    a = get_method("lime", n_samples=400, alpha=0.0).attribute(linear, ["x"], "word")[0]
    np.testing.assert_allclose(a.scores[0], weights, atol=1e-9)
    assert a.per_output["r2"][0] == pytest.approx(1.0, abs=1e-12)

    interaction = FormulaEngine(lambda m: float(m[0] and m[1]) + 0.3 * m[2], 6)
    b = get_method("lime", n_samples=400, alpha=0.0).attribute(interaction, ["x"], "word")[0]
    masks = interaction.seen[0]
    y = np.array([interaction.f(m) for m in masks])
    coef, r2 = lime_reference(masks, y, 25.0)
    np.testing.assert_allclose(b.scores[0], coef, atol=1e-8)
    assert b.per_output["r2"][0] == pytest.approx(r2, abs=1e-9) and r2 < 0.99
    assert b.diagnostics == {"n_samples": 400} and masks[0].all()


def shapley_brute_force(f, d: int) -> np.ndarray:
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for k in range(d):
            for s in itertools.combinations(others, k):
                m = np.zeros(d, dtype=bool)
                m[list(s)] = True
                w = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
                with_i = m.copy()
                with_i[i] = True
                phi[i] += w * (f(with_i) - f(m))
    return phi


def test_kernel_shap_exact_and_sampled_against_closed_forms() -> None:
    def game(m):
        return float(m[0] and m[1]) + 2.0 * m[2] - 0.5 * float(m[3] or m[4])

    exact = get_method("kernel_shap").attribute(FormulaEngine(game, 6), ["x"], "word")[0]
    np.testing.assert_allclose(exact.scores[0], [0.5, 0.5, 2.0, -0.25, -0.25, 0.0], atol=1e-12)
    np.testing.assert_allclose(exact.scores[0], shapley_brute_force(game, 6), atol=1e-12)
    assert exact.diagnostics == {"exact": True, "n_coalitions": 64}

    # sampled KernelSHAP recovers an additive game exactly (any full-rank coalition sample does)
    weights = np.linspace(-1, 1, 15)
    sampled = get_method("kernel_shap", n_samples=300).attribute(
        FormulaEngine(lambda m: weights @ m, 15), ["x"], "word"
    )[0]
    np.testing.assert_allclose(sampled.scores[0], weights, atol=1e-9)
    assert sampled.diagnostics == {"exact": False, "n_coalitions": 300, "sampling": "leverage"}


def test_every_output_column_is_reduced_on_its_own() -> None:
    """Two outputs (as for two generated tokens): each gets the method applied to its column."""

    def two(m):
        return np.array([2.0 * m[0] - m[2], float(m[1] and m[3])])

    eng = FormulaEngine(two, 4, n_outputs=2)
    occ = get_method("occlusion").attribute(eng, ["x"], "word")[0]
    np.testing.assert_allclose(occ.scores, [[2.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    shap = get_method("kernel_shap").attribute(eng, ["x"], "word")[0]
    np.testing.assert_allclose(
        shap.scores, [[2.0, 0.0, -1.0, 0.0], [0.0, 0.5, 0.0, 0.5]], atol=1e-12
    )
    rnd = get_method("random", seed=3).attribute(eng, ["x"], "word")[0]
    again = get_method("random", seed=3).attribute(FormulaEngine(two, 4, 2), ["x"], "word")[0]
    assert rnd.scores.shape == (2, 4) and np.array_equal(rnd.scores, again.scores)
    other_text = get_method("random", seed=3).attribute(eng, ["y"], "word")[0]
    assert not np.array_equal(rnd.scores, other_text.scores)
