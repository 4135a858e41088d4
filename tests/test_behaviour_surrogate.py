"""Global surrogates: planted rules are recovered, fidelity is agreement with the model (not gold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explainlm.behaviour.surrogate import SurrogateResult, fit_surrogates, text_features
from explainlm.errors import UserError

VOCAB = ["good", "bad", "not", "film", "plot", "actors", "the", "a", "story", "music"]


def corpus(n: int = 600, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB, size=rng.integers(3, 8))) for _ in range(n)]


def rule(text: str) -> str:
    """A planted model: positive iff 'good' occurs and 'not' does not."""
    w = text.split()
    return "pos" if "good" in w and "not" not in w else "neg"


def test_a_depth_two_tree_recovers_a_planted_rule() -> None:
    texts = corpus()
    labels = [rule(t) for t in texts]
    rep = fit_surrogates(texts, labels, kinds=("tree",), tree_depth=2, max_depth=4)[0]
    assert rep.fidelity["value"] == 1.0 and rep.complexity["depth"] == 2
    assert "'good' present" in rep.rules and "'not' present" in rep.rules
    by_depth = {p["complexity"]: p for p in rep.curve}
    assert by_depth[1]["fidelity"] < 1.0 and by_depth[2]["fidelity"] == 1.0
    share = np.mean([lab == "neg" for lab in labels])
    # the trivial surrogate answers the model's most common label (neg here)
    assert abs(rep.baseline_fidelity["value"] - share) < 0.06
    assert "faithful description" in rep.verdict


def test_fidelity_is_measured_against_the_model_not_gold() -> None:
    """Gold labels disagree with the model on a known 30% of texts: fidelity stays 1, gold accuracy
    of surrogate and model both equal the agreement of model and gold on the held-out split."""
    from sklearn.model_selection import train_test_split

    texts = corpus(500, seed=2)
    labels = [rule(t) for t in texts]
    rng = np.random.default_rng(5)
    flip = rng.random(len(texts)) < 0.3
    gold = [
        ({"pos": "neg", "neg": "pos"}[y] if f else y) for y, f in zip(labels, flip, strict=True)
    ]
    rep = fit_surrogates(texts, labels, gold, kinds=("tree",), tree_depth=2, seed=3)[0]
    _, te = train_test_split(np.arange(len(texts)), test_size=0.3, random_state=3, stratify=labels)
    expected = np.mean([labels[i] == gold[i] for i in te])
    assert rep.fidelity["value"] == 1.0
    assert rep.model_accuracy["value"] == pytest.approx(expected)
    assert rep.gold_accuracy["value"] == pytest.approx(expected)
    assert rep.n_test == len(te)


def test_sparse_logistic_finds_the_words_of_a_linear_model() -> None:
    texts = corpus(800, seed=4)

    def linear(t: str) -> str:
        w = t.split()
        return (
            "pos"
            if 2 * w.count("good") - 3 * w.count("bad") + 0.5 * w.count("music") > 0.2
            else "neg"
        )

    labels = [linear(t) for t in texts]
    rep = fit_surrogates(texts, labels, kinds=("logistic",), max_nonzero=5, seed=1)[0]
    weights = {w["feature"]: w["weight"] for w in rep.weights}
    assert rep.complexity["nonzero"] <= 5
    assert weights["good"] > 0 and weights["bad"] < 0  # towards classes_[1] = "pos"
    assert rep.fidelity["value"] > 0.9
    nz = [p["complexity"] for p in sorted(rep.curve, key=lambda p: p["C"])]
    assert nz == sorted(nz) and nz[0] < nz[-1]  # the L1 path adds words as C grows


def test_vocabulary_features_multiclass_and_errors() -> None:
    texts = corpus(400, seed=6)
    labels = ["a" if "good" in t.split() else ("b" if "bad" in t.split() else "c") for t in texts]
    reps = fit_surrogates(texts, labels, vocabulary=["good", "bad"], feature_set="top-words")
    assert {r.kind for r in reps} == {"tree", "logistic"}
    assert all(r.n_features == 2 and r.feature_set == "top-words" for r in reps)
    assert {w["class"] for w in reps[1].weights} <= {"a", "b", "c"}
    assert text_features("Not good , really", (1, 2)) == ["not", "good", "really", "not good"]
    with pytest.raises(UserError, match="unknown surrogate"):
        fit_surrogates(texts, labels, kinds=("forest",))
    with pytest.raises(UserError, match="at least 10 texts"):
        fit_surrogates(texts[:5], labels[:5])
    with pytest.raises(UserError, match="same length"):
        fit_surrogates(texts, labels[:-1])


def test_unreliable_surrogates_say_so_and_results_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    texts = corpus(300, seed=8)
    labels = list(rng.choice(["pos", "neg"], size=len(texts)))  # the "model" is noise
    reps = fit_surrogates(texts, labels, kinds=("tree", "logistic"))
    assert all(
        "does not describe the model" in r.verdict or "not a reliable" in r.verdict for r in reps
    )
    res = SurrogateResult(reps, {"model": "<b>m</b>", "dataset": "toy"}, run_id="r1")
    back = SurrogateResult.load(res.save(tmp_path / "s.json"))
    assert back.report("tree").rules == res.report("tree").rules and back.run_id == "r1"
    assert back.report("logistic").curve == res.report("logistic").curve
    html = res.save(tmp_path / "s.html").read_text()
    assert "<b>m</b>" not in html and "Craven" in html and "<svg" in html
    assert res.save(tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert len(res.to_pandas()) == sum(len(r.curve) for r in reps)
