"""Sensitivity curves against a naive loop of predictions on reduced texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explainlm import explain
from explainlm.behaviour.sensitivity import SensitivityResult, sensitivity_curves
from explainlm.engine import Engine
from explainlm.evaluation import prepare_items
from explainlm.models import load_model
from explainlm.models.words import remove_words, split_words
from explainlm.targets import ClassTarget

TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "the plot is dull and the acting is worse",
    "fine",
    "an uneven but often funny film that never quite finds its footing",
]


@pytest.fixture(scope="module")
def clf(tiny_bert_dir: Path) -> object:
    return load_model(str(tiny_bert_dir), device="cpu")


def naive(clf: object, text: str, label: str, order: np.ndarray, ks: list[int]) -> np.ndarray:
    spans = split_words(text)
    c = clf.labels.index(label)  # type: ignore[attr-defined]
    full = clf.predict([text])[0].probs[label]  # type: ignore[attr-defined]
    out = []
    for k in ks:
        keep = np.ones(len(spans), bool)
        keep[order[:k]] = False
        reduced = remove_words(text, spans, keep)
        p = clf.predict([reduced])[0] if reduced.strip() else None  # type: ignore[attr-defined]
        if p is None:  # every word removed: the model reads the empty text
            enc = clf.encode([""], allow_empty=True)  # type: ignore[attr-defined]
            s = clf.scores(enc)[0].softmax(-1)  # type: ignore[attr-defined]
            out.append(full - float(s[c]))
        else:
            out.append(full - p.probs[label])
    return np.array(out)


@pytest.mark.parametrize("x", ["fraction", "count"])
def test_curves_equal_a_naive_loop(clf: object, x: str) -> None:
    exps = explain(TEXTS, clf, ["occlusion"])  # type: ignore[arg-type]
    engine = Engine(clf, ClassTarget("prob"))  # type: ignore[arg-type]
    items = prepare_items(engine, TEXTS, [e.label for e in exps])
    grid = [0, 0.25, 0.5, 1.0] if x == "fraction" else [0, 1, 2, 5]
    res = sensitivity_curves(
        engine, items, [e.word_scores for e in exps], grid=grid, x=x, n_random=3, seed=4, n_boot=200
    )
    attr, rand = [], []
    for it, e in zip(items, exps, strict=True):
        n = len(e.words)
        ks = (
            [int(round(q * n + 1e-9)) for q in grid]
            if x == "fraction"
            else [min(int(q), n) for q in grid]
        )
        order = np.argsort(-np.asarray(e.word_scores), kind="stable")
        attr.append(naive(clf, e.text, e.label, order, ks))
        rng = np.random.default_rng([4, it.index])
        rand.append(
            np.mean([naive(clf, e.text, e.label, rng.permutation(n), ks) for _ in range(3)], 0)
        )
    np.testing.assert_allclose(res.per_text["attribution"]["drop"], attr, atol=1e-5)
    np.testing.assert_allclose(res.per_text["random"]["drop"], rand, atol=1e-5)
    np.testing.assert_allclose(res.curves["attribution"]["drop"], np.mean(attr, 0), atol=1e-5)
    flips = [
        [float(e.probs[e.label] - d < 0.5) for d in row] for e, row in zip(exps, attr, strict=True)
    ]
    np.testing.assert_allclose(res.curves["attribution"]["flip"], np.mean(flips, 0), atol=1e-9)
    assert res.curves["attribution"]["drop"][0] == pytest.approx(0.0, abs=1e-6)


def test_auc_difference_is_a_paired_wilcoxon(clf: object, tmp_path: Path) -> None:
    from scipy.stats import wilcoxon

    texts = TEXTS * 3
    exps = explain(texts, clf, ["occlusion"])  # type: ignore[arg-type]
    engine = Engine(clf, ClassTarget("prob"))  # type: ignore[arg-type]
    items = prepare_items(engine, texts, [e.label for e in exps])
    res = sensitivity_curves(engine, items, [e.word_scores for e in exps], n_random=2, n_boot=200)
    grid = np.asarray(res.grid)

    def auc(rows: list[list[float]]) -> np.ndarray:
        return np.array([np.trapezoid(r, grid) for r in rows])

    a, r = auc(res.per_text["attribution"]["drop"]), auc(res.per_text["random"]["drop"])
    assert res.auc["attribution"]["value"] == pytest.approx(a.mean())
    d = a - r
    assert res.difference["p_value"] == pytest.approx(wilcoxon(d[np.abs(d) > 1e-12]).pvalue)
    back = SensitivityResult.load(res.save(tmp_path / "s.json"))
    assert back.curves == res.curves and back.reading() == res.reading()
    assert "random order" in res.save(tmp_path / "s.html").read_text()
    assert len(res.to_pandas()) == 2 * len(res.grid)
