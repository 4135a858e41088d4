"""Evaluation metrics on hand-computed examples, against ferret's published formulas, and the API."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from explainlm.errors import UserError
from explainlm.evaluation import METRICS, bootstrap_ci, evaluate, get_metric, paired_test
from explainlm.evaluation.base import Case
from explainlm.evaluation.faithfulness import curve_points, top_k_count, top_k_sets
from explainlm.evaluation.plausibility import iou_f1_instance, spans
from explainlm.explanation import Explanation
from explainlm.models.words import split_words


# ----------------------------------------------------------------------------- a known model
class AdditiveEngine:
    """A stand-in engine whose target is Σ weight(word) over the words left in the text."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.wrapper = None
        # word removal re-encodes the reduced texts; the stand-in "encoding" is just the text
        self.classifier = SimpleNamespace(
            encode=lambda texts, **kw: [SimpleNamespace(text=t) for t in texts]
        )

    def f(self, text: str) -> float:
        return sum(self.weights.get(w, 0.0) for w in text.split())

    def score_encodings(self, items, variants):  # the engine API evaluate_masks ends in
        return [np.array([self.f(v.text) for v in vs]) for vs in variants]


def make_case(engine: AdditiveEngine, text: str, scores, rationale=None) -> Case:
    e = Explanation(
        text=text,
        method="m",
        target="prob",
        label="pos",
        predicted="pos",
        probs={"pos": 1.0},
        words=text.split(),
        word_scores=[float(s) for s in scores],
    )
    item = SimpleNamespace(
        encoding=SimpleNamespace(text=text, word_spans=split_words(text)),
        target_value=engine.f(text),
    )
    r = None if rationale is None else np.asarray(rationale)
    return Case(e, np.asarray(scores, dtype=float), item, r)  # type: ignore[arg-type]


WORDS = "a b c d e f g h i j"
WEIGHTS = {"a": 0.5, "b": 0.2, "c": 0.1}


def test_comprehensiveness_and_sufficiency_hand_computed() -> None:
    eng = AdditiveEngine(WEIGHTS)
    case = make_case(eng, WORDS, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    # n = 10, ERASER bins, floor: 1 % and 5 % → k = 0 (skipped); 10 % → {a}; 20 % → {a, b};
    # 50 % → {a..e}. f(x) = 0.8; without them: 0.3, 0.1, 0.0; with only them: 0.5, 0.7, 0.8.
    comp = get_metric("comprehensiveness").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert comp["value"] == pytest.approx((0.5 + 0.7 + 0.8) / 3)
    assert comp["k"] == [1, 2, 5]
    suff = get_metric("sufficiency").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert suff["value"] == pytest.approx((0.3 + 0.1 + 0.0) / 3)
    # ceil rounding keeps 1 % and 5 % as one word each: de-duplicated with the 10 % bin
    comp_ceil = get_metric("comprehensiveness", rounding="ceil").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert comp_ceil["k"] == [1, 2, 5]


def test_top_k_rounding_and_dedup() -> None:
    assert top_k_count(10, 0.05) == 0 and top_k_count(10, 0.05, "ceil") == 1
    assert top_k_count(19, 0.5) == 9 and top_k_count(19, 0.5, "ceil") == 10
    s = np.array([0.5, -0.2, 0.1, -0.9])
    # ferret's only_pos: negative scores never enter the rationale; equal sets are skipped
    sets = top_k_sets(s, [0.25, 0.5, 0.75, 1.0], only_positive=True)
    assert [sorted(x.tolist()) for x in sets] == [[0], [0, 2]]


def test_deletion_insertion_hand_computed() -> None:
    eng = AdditiveEngine({"a": 0.6, "b": 0.4})
    case = make_case(eng, "a b", [1.0, 0.0])
    # deletion (most relevant first): f = 1.0, 0.4, 0.0 at x = 0, .5, 1 → AUC 0.45
    d = get_metric("deletion_auc").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert d["value"] == pytest.approx(0.45)
    assert d["curve"] == [[0.0, 0.5, 1.0], pytest.approx([1.0, 0.4, 0.0])]
    ins = get_metric("insertion_auc").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert ins["value"] == pytest.approx(0.55)
    lerf = get_metric("deletion_auc", order="lerf").compute(eng, [case])[0]  # type: ignore[arg-type]
    assert lerf["value"] == pytest.approx(ins["value"])  # LeRF deletion = MoRF insertion


def test_curve_points_subsample() -> None:
    assert curve_points(3, 20).tolist() == [0, 1, 2, 3]
    pts = curve_points(100, 10)
    assert pts[0] == 0 and pts[-1] == 100 and len(pts) == 11


def test_tau_loo_and_ig_delta() -> None:
    eng = AdditiveEngine({"a": 0.3, "b": 0.2, "c": 0.1})
    good = make_case(eng, "a b c", [3, 2, 1])
    bad = make_case(eng, "a b c", [1, 2, 3])
    vals = get_metric("tau_loo").compute(eng, [good, bad])  # type: ignore[arg-type]
    assert vals[0]["value"] == pytest.approx(1.0) and vals[1]["value"] == pytest.approx(-1.0)
    good.explanation.delta = -0.25
    out = get_metric("ig_delta").compute(None, [good, make_case(eng, "a", [1])])
    assert out[0]["value"] == 0.25 and math.isnan(out[1]["value"])


# ------------------------------------------------------------------ ferret's formulas (oracle)
def ferret_aopc(f, words, scores, thresholds, only_pos, sufficiency):
    """ferret 0.4.2 AOPC (evaluators/faithfulness_measures.py, utils_from_soft_to_discrete.py),
    re-written independently: v = int(p · n); top-v by argsort()[-v:][::-1] (positive only when
    only_pos); a set equal to the previous kept one is skipped; AOPC = mean(f(x) − f(x′))."""
    base = f(words)
    drops, last = [], None
    for p in thresholds:
        v = int(p * len(scores))
        if not 0 < v <= len(scores):
            continue
        top = [i for i in np.array(scores).argsort()[-v:][::-1] if not only_pos or scores[i] > 0]
        if not top or (last is not None and set(top) == last):
            continue
        last = set(top)
        kept = [w for i, w in enumerate(words) if (i in last) == sufficiency]
        drops.append(base - f(kept))
    return float(np.mean(drops)) if drops else None


@pytest.mark.parametrize("only_pos", [True, False])
@pytest.mark.parametrize("metric", ["comprehensiveness", "sufficiency"])
def test_aopc_matches_ferret(only_pos: bool, metric: str) -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(14)]
    weights = dict(zip(vocab, rng.normal(0, 0.2, len(vocab)), strict=True))
    eng = AdditiveEngine(weights)
    for n in (3, 7, 14):
        words = vocab[:n]
        scores = rng.normal(size=n)
        case = make_case(eng, " ".join(words), scores)
        ours = get_metric(metric, bins="ferret", only_positive=only_pos).compute(eng, [case])[0]  # type: ignore[arg-type]
        ref = ferret_aopc(
            lambda ws: sum(weights[w] for w in ws),
            words,
            scores,
            np.arange(0.1, 1.1, 0.1),
            only_pos,
            metric == "sufficiency",
        )
        if ref is None:
            assert math.isnan(ours["value"])
        else:
            assert ours["value"] == pytest.approx(ref)


# -------------------------------------------------------------------------------- plausibility
def test_plausibility_hand_computed() -> None:
    eng = AdditiveEngine({})
    case = make_case(eng, "a b c d", [0.9, 0.1, 0.8, 0.0], rationale=[1, 1, 0, 0])
    # k = mean rationale length = 2 → predicted {a, c}: P = R = 1/2
    assert get_metric("token_f1").compute(None, [case])[0]["value"] == pytest.approx(0.5)
    # spans: truth [0, 2); predicted [0, 1) (IOU 1/2 → match) and [2, 3) (no match)
    # P = 1/2, R = 1/1 → F1 = 2/3
    assert get_metric("iou_f1").compute(None, [case])[0]["value"] == pytest.approx(2 / 3)
    case2 = make_case(eng, "a b c d", [0.9, 0.8, 0.7, 0.1], rationale=[1, 0, 1, 0])
    # PR points (R, P): (.5, 1), (.5, .5), (1, 2/3), (1, .5) → area .5 + (1 + 2/3)/4 ... = 0.791 6̅
    assert get_metric("auprc").compute(None, [case2])[0]["value"] == pytest.approx(
        0.5 + 0.5 * (0.5 + 2 / 3) / 2
    )
    empty = make_case(eng, "a b", [1, 0], rationale=[0, 0])
    assert math.isnan(get_metric("token_f1").compute(None, [empty])[0]["value"])


def test_iou_f1_eraser_definition() -> None:
    assert spans([1, 1, 0, 1]) == [(0, 2), (3, 4)]
    # a long predicted span covering two truth spans: IOU 2/5 and 1/5 < .5 → no match
    assert iou_f1_instance([1, 1, 0, 0, 1], [1, 1, 1, 1, 1]) == 0.0
    assert iou_f1_instance([1, 1, 0, 0], [1, 1, 1, 0]) == 1.0  # IOU 2/3


def test_token_f1_fixed_k_and_unknown_params() -> None:
    case = make_case(AdditiveEngine({}), "a b c", [3, 2, 1], rationale=[1, 0, 0])
    assert get_metric("token_f1", k=1).compute(None, [case])[0]["value"] == 1.0
    with pytest.raises(UserError, match="unknown parameter"):
        get_metric("token_f1", kk=1)
    with pytest.raises(UserError, match="unknown metric"):
        get_metric("nope")
    with pytest.raises(UserError, match="replace"):
        get_metric("comprehensiveness", replace="zap")


# ---------------------------------------------------------------------------------- statistics
def test_bootstrap_ci_seeded() -> None:
    vals = np.random.default_rng(0).normal(1.0, 1.0, 200)
    a = bootstrap_ci(vals, seed=1)
    assert a == bootstrap_ci(vals, seed=1)
    mean, lo, hi = a
    assert lo < mean < hi and mean == pytest.approx(vals.mean())
    assert hi - lo == pytest.approx(2 * 1.96 / math.sqrt(200), rel=0.2)
    assert bootstrap_ci([np.nan, 2.0]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_paired_tests() -> None:
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + 0.5 + rng.normal(0, 0.1, 30)
    assert paired_test(a, b) == pytest.approx(wilcoxon(a - b).pvalue)
    assert paired_test(a, b, test="permutation", n_perm=2000) < 0.01
    # tiny but real differences: still the signed-rank test on them
    c = a + rng.normal(0, 1e-3, 30)
    assert paired_test(a, c) == pytest.approx(wilcoxon(a - c).pvalue)
    # the sign-flip permutation test against its exact value (all 2^12 sign patterns)
    d = rng.normal(0.4, 1.0, 12)
    flips = np.array(list(itertools.product([-1.0, 1.0], repeat=12)))
    exact = float(np.mean(np.abs((flips * d).mean(1)) >= abs(d.mean()) - 1e-15))
    mc = paired_test(d, np.zeros(12), test="permutation", n_perm=20000)
    assert mc == pytest.approx(exact, abs=0.01) and 0.02 < exact < 0.9


# ------------------------------------------------------------------------ evaluate(), no model
def _expl(text: str, method: str, scores) -> Explanation:
    return Explanation(
        text=text,
        method=method,
        target="prob",
        label="positive",
        predicted="positive",
        probs={"positive": 0.9, "negative": 0.1},
        words=text.split(),
        word_scores=[float(s) for s in scores],
        delta=0.1 if method == "ig" else None,
    )


def test_evaluate_plausibility_result_api() -> None:
    exps = [
        _expl("a good film", "ig", [0.0, 0.9, 0.1]),
        _expl("a good film", "rand", [0.9, 0.0, 0.1]),
        _expl("bad acting here", "ig", [0.1, 0.8, 0.2]),
        _expl("bad acting here", "rand", [0.1, 0.2, 0.8]),
    ]
    rats = {"a good film": [0, 1, 0], "bad acting here": [0, 1, 0]}
    res = evaluate(exps, ["token_f1", "auprc", "ig_delta"], rationales=rats)
    df = res.to_pandas()
    assert set(df.columns) >= {"example", "method", "metric", "value"}
    table = {(r["method"], r["metric"]): r for r in res.summary()}
    assert table[("ig", "token_f1")]["mean"] == 1.0 and table[("rand", "token_f1")]["mean"] == 0.0
    assert table[("ig", "ig_delta")]["mean"] == pytest.approx(0.1)
    tests = res.tests()
    assert {(t["metric"], t["a"], t["b"]) for t in tests} >= {("token_f1", "ig", "rand")}
    assert len(res.agreement) == 2
    assert '"summary"' in res.to_json()
    with pytest.raises(UserError, match="need the model"):
        evaluate(exps, ["comprehensiveness"])
    with pytest.raises(UserError, match="rationales"):
        evaluate(exps, ["token_f1"])


def test_registry_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "evaluation.md").read_text()
    for name, cls in METRICS.items():
        assert f"`{name}`" in doc, name
        assert cls.citation and cls.family in (
            "faithfulness",
            "plausibility",
            "stability",
            "sanity",
        )
