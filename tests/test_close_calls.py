"""Under ``precision="auto"`` a reduced-precision forward pass (bf16, int8) may move a class
probability by about 0.01; a text whose two most probable classes are closer than
``CLOSE_CALL`` gets its label (its class scores) from a float32 pass instead, in the engine (the
target of every explanation) and in ``predict``. Explicit bf16/int8 requests keep their own."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from explainlm.engine import Engine
from explainlm.models import ModelWrapper, make_task
from explainlm.models.precision import CLOSE_CALL, PrecisionPlan, close_calls, head_modules
from explainlm.services.predict import PredictRequest, predict_texts

WORDS = "good bad film plot acting dull great boring superb awful story music long".split()
AUTO_INT8 = PrecisionPlan("int8", "fp32", "weights", "auto")


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(3)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(40)]


@pytest.fixture(scope="module")
def sharp_clf(tiny_bert_dir, texts):
    """The tiny BERT classifier with its head (one linear layer) scaled so that the median text's
    margin is CLOSE_CALL: about half the texts are close calls, half are not."""
    clf = make_task(ModelWrapper.load(str(tiny_bert_dir)))
    d = np.abs(np.diff(clf.scores(clf.encode(texts)).numpy(), axis=-1))
    scale = 2 * np.arctanh(CLOSE_CALL) / float(np.median(d))  # a 2-class margin is tanh(d / 2)
    with torch.no_grad():
        for head in head_modules(clf.wrapper.model).values():
            for p in head.parameters():
                p.mul_(scale)
    return clf


def margins(scores: np.ndarray) -> np.ndarray:
    """The top-two probability gap, computed here with numpy."""
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    top = np.sort(p, -1)
    return top[:, -1] - top[:, -2]


def test_close_calls_are_the_rows_with_a_small_top_two_gap() -> None:
    scores = torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * 0.3
    expected = np.flatnonzero(margins(scores.numpy().astype(np.float64)) < CLOSE_CALL)
    assert 0 < len(expected) < 200
    assert close_calls(scores) == expected.tolist()
    assert close_calls(torch.zeros(0, 2)) == [] and close_calls(torch.ones(4, 1)) == []


def item_scores(engine: Engine, texts: list[str]) -> np.ndarray:
    return torch.stack([it.scores for it in engine.prepare(texts)]).numpy()


def test_auto_decides_close_calls_in_float32(sharp_clf, texts) -> None:
    auto = Engine(sharp_clf, precision=AUTO_INT8)
    got = item_scores(auto, texts)
    int8 = item_scores(Engine(sharp_clf, precision="int8"), texts)
    fp32 = item_scores(Engine(sharp_clf, precision="fp32"), texts)
    close = margins(int8) < CLOSE_CALL
    assert 0 < close.sum() < len(texts)  # both kinds are exercised
    assert auto.close_calls == np.flatnonzero(close).tolist()
    np.testing.assert_allclose(got[close], fp32[close], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got[~close], int8[~close])
    # every label the engine explains is float32's where int8 made it a close call
    assert (got.argmax(-1)[close] == fp32.argmax(-1)[close]).all()


def test_a_close_calls_target_value_is_the_planned_passes(sharp_clf, texts) -> None:
    """Perturbation methods subtract variant values (planned precision) from the target value:
    both come from the same precision, at the label float32 decided."""
    auto = Engine(sharp_clf, precision=AUTO_INT8)
    items = auto.prepare(texts)
    int8 = item_scores(Engine(sharp_clf, precision="int8"), texts)
    probs = np.exp(int8) / np.exp(int8).sum(-1, keepdims=True)
    for it in items:
        expected = probs[it.index, it.label_idx]  # the default target: the label's probability
        assert it.target_value == pytest.approx(expected, abs=1e-6)
    assert auto.close_calls  # some of them are close calls


def test_explicit_int8_keeps_its_own_scores(sharp_clf, texts) -> None:
    engine = Engine(sharp_clf, precision="int8")
    item_scores(engine, texts)
    assert engine.close_calls == []


def test_predict_under_auto_labels_close_calls_in_float32(sharp_clf, texts, monkeypatch) -> None:
    monkeypatch.setenv("EXPLAINLM_PRECISION", "int8")  # what auto means on this machine
    got = predict_texts(PredictRequest(texts=texts, model="m", precision="auto"), sharp_clf, texts)
    monkeypatch.setenv("EXPLAINLM_PRECISION", "fp32")
    explicit = predict_texts(
        PredictRequest(texts=texts, model="m", precision="int8"), sharp_clf, texts
    )
    fp32 = sharp_clf.predict(texts)
    labels = sharp_clf.labels
    int8 = np.array([[p["probs"][lab] for lab in labels] for p in explicit])
    top = np.sort(int8, -1)
    close = (top[:, -1] - top[:, -2]) < CLOSE_CALL
    assert 0 < close.sum() < len(texts)
    for i, (g, e, f) in enumerate(zip(got, explicit, fp32, strict=True)):
        want = {"label": f.label, "probs": f.probs} if close[i] else e
        assert g["label"] == want["label"]
        for lab in labels:
            assert g["probs"][lab] == pytest.approx(want["probs"][lab], abs=1e-5)
