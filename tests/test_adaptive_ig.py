"""Integrated gradients with an adaptive number of points: it stops at the target completeness
error, reports the points and rows it used, and equals fixed-step IG at the points it reports."""

from __future__ import annotations

import numpy as np
import pytest

from explainlm import explain
from explainlm.errors import UserError
from explainlm.methods.gradient import ig_schedule
from explainlm.models import Generator, make_task

TEXTS = [
    "a wonderful , moving film",
    "dull and far too long , with nothing to say",
    "the cast is fine but the script is a mess",
]


@pytest.fixture(scope="module")
def bert_clf(tiny_bert):
    return make_task(tiny_bert)


def rows_used(steps: int, min_steps: int) -> int:
    sched = ig_schedule(min_steps, 10_000)
    return sum(n + 2 for n in sched[: sched.index(steps) + 1])


def test_schedule() -> None:
    assert ig_schedule(8, 50) == [8, 16, 32, 50]
    assert ig_schedule(4, 4) == [4]
    assert ig_schedule(16, 8) == [8]


@pytest.mark.parametrize("tol", [1e-2, 1e-4])
def test_adaptive_stops_at_the_tolerance_and_equals_fixed_steps(bert_clf, tol) -> None:
    params = {"tolerance": tol, "min_steps": 2, "steps": 64, "method": "gausslegendre"}
    out = explain(
        TEXTS, bert_clf, ["integrated_gradients"], method_params={"integrated_gradients": params}
    )
    for e in out:
        steps = e.diagnostics["steps"]
        assert steps in ig_schedule(2, 64)
        assert e.diagnostics["model_rows"] == rows_used(steps, 2)
        if e.diagnostics["converged"]:
            # prob targets: f(x) − f(x′) is at most 1, so the bound is tol itself
            assert abs(e.delta) <= tol
        else:
            assert steps == 64
        # the result is fixed-step IG at the reported number of points
        fixed = explain(
            [e.text],
            bert_clf,
            ["integrated_gradients"],
            method_params={"integrated_gradients": {"steps": steps}},
        )[0]
        np.testing.assert_allclose(e.word_scores, fixed.word_scores, rtol=1e-5, atol=1e-8)
        assert e.delta == pytest.approx(fixed.delta, abs=1e-7)
        if steps > 2 and e.diagnostics["converged"]:
            # the previous number of points was not good enough
            prev = ig_schedule(2, 64)[ig_schedule(2, 64).index(steps) - 1]
            coarse = explain(
                [e.text],
                bert_clf,
                ["integrated_gradients"],
                method_params={"integrated_gradients": {"steps": prev}},
            )[0]
            assert abs(coarse.delta) > tol


def test_unreachable_tolerance_is_reported(bert_clf) -> None:
    params = {"tolerance": 1e-12, "min_steps": 2, "steps": 8}
    out = explain(
        TEXTS[:1],
        bert_clf,
        ["integrated_gradients"],
        method_params={"integrated_gradients": params},
    )[0]
    assert out.diagnostics["converged"] is False and out.diagnostics["steps"] == 8
    assert out.diagnostics["model_rows"] == (2 + 2) + (4 + 2) + (8 + 2)


def test_fixed_steps_report_no_adaptive_diagnostics(bert_clf) -> None:
    out = explain(
        TEXTS[:1], bert_clf, ["integrated_gradients"], method_params={"integrated_gradients": {}}
    )[0]
    assert "steps" not in out.diagnostics and "gap" not in out.diagnostics


def test_bad_tolerance_is_refused() -> None:
    with pytest.raises(UserError, match="tolerance"):
        from explainlm.methods import get_method

        get_method("integrated_gradients", tolerance=0)


def test_adaptive_on_generated_tokens(tiny_llama) -> None:
    from explainlm.generation import explain_generation

    gen = Generator(tiny_llama, chat=False)
    params = {"tolerance": 1e-3, "min_steps": 2, "steps": 32}
    res = explain_generation(
        ["The capital of France is"],
        gen,
        ["integrated_gradients"],
        max_new_tokens=3,
        method_params={"integrated_gradients": params},
    )[0]
    steps = res.diagnostics["steps"]
    assert steps in ig_schedule(2, 32)
    assert len(res.delta) == 3  # one completeness delta per generated token
    fixed = explain_generation(
        ["The capital of France is"],
        gen,
        ["integrated_gradients"],
        target_texts=[res.continuation],
        method_params={"integrated_gradients": {"steps": steps}},
    )[0]
    np.testing.assert_allclose(
        np.nan_to_num(np.array(res.matrix, dtype=float)),
        np.nan_to_num(np.array(fixed.matrix, dtype=float)),
        rtol=1e-5,
        atol=1e-7,
    )
