"""Soft-NC / Soft-NS (Zhao & Aletras, 2023) against an independent computation of the definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explainlm.evaluation import METRICS, evaluate
from explainlm.evaluation.soft_faithfulness import normalised_scores
from explainlm.explanation import Explanation
from explainlm.models import ZeroShotClassifier, make_task

TEXTS = ["a wonderful , touching film", "dull and boring", "not bad at all , really"]


@pytest.fixture(scope="module")
def bert_clf(tiny_bert):
    return make_task(tiny_bert)


@pytest.fixture(scope="module")
def llama_clf(tiny_llama):
    return ZeroShotClassifier(tiny_llama)


@pytest.fixture(params=["bert", "llama"])
def clf(request, bert_clf, llama_clf):
    return bert_clf if request.param == "bert" else llama_clf


def explanation(clf, text: str, scores: list[float], label: str | None = None) -> Explanation:
    probs = clf.predict([text])[0].probs
    predicted = max(probs, key=probs.get)
    return Explanation(
        text=text,
        method="m",
        target="prob",
        label=label or predicted,
        predicted=predicted,
        probs=probs,
        words=text.split(" "),
        word_scores=scores,
    )


def prob(clf, enc, label: str, embeds: torch.Tensor | None = None) -> float:
    batch = clf.wrapper.collate([enc])
    with torch.no_grad():
        scores = clf.class_scores(batch, inputs_embeds=embeds)
    return float(scores.softmax(-1)[0, clf.label_index(label)])


def reference(clf, e: Explanation, top: list[int], kind: str, baseline: str) -> float:
    """The paper's formulas on hand-built inputs, for 0/1 scores (deterministic Bernoulli masks).

    Scores normalise to exactly 0 and 1, so soft comprehensiveness zeroes the embeddings of the
    top words and keeps the rest; soft sufficiency does the opposite.
    """
    enc = clf.encode([e.text])[0]
    x = clf.wrapper.embed(torch.tensor([enc.input_ids])).detach()
    word = np.asarray(enc.word_ids)
    feature = (word >= 0) & ~np.asarray(enc.special)
    in_top = feature & np.isin(word, top)
    erase = in_top if kind == "soft_nc" else feature & ~in_top
    perturbed = x.clone()
    perturbed[0, torch.tensor(erase)] = 0.0
    p = prob(clf, enc, e.label)
    p_x = prob(clf, enc, e.label, perturbed)
    if baseline == "remove":
        p0 = prob(clf, clf.encode([""], allow_empty=True)[0], e.label)
    else:
        zeroed = x.clone()
        zeroed[0, torch.tensor(feature)] = 0.0
        p0 = prob(clf, enc, e.label, zeroed)
    soft_s0 = 1 - max(0.0, p - p0)
    if 1 - soft_s0 <= 0:
        return float("nan")
    soft_c = max(0.0, p - p_x)
    soft_s = 1 - soft_c
    if kind == "soft_nc":
        return float(np.clip(soft_c / (1 - soft_s0), 0, 1))
    return float(np.clip((soft_s - soft_s0) / (1 - soft_s0), 0, 1))


@pytest.mark.parametrize("baseline", ["remove", "zero"])
def test_soft_metrics_equal_the_definition_for_two_valued_scores(clf, baseline: str) -> None:
    checked = 0
    cases = [(t, top, lab) for t in TEXTS for top in ([0], [1, 2]) for lab in clf.labels]
    for text, top, label in cases:
        n = len(text.split(" "))
        scores = [3.0 if j in top else -1.0 for j in range(n)]
        e = explanation(clf, text, scores, label)
        res = evaluate(
            [e],
            ["soft_nc", "soft_ns"],
            clf,
            metric_params={m: {"baseline": baseline, "samples": 3} for m in ("soft_nc", "soft_ns")},
            agreement=False,
        )
        for row in res.rows:
            ref = reference(clf, e, top, row["metric"], baseline)
            if math.isnan(ref):
                assert math.isnan(row["value"])
            else:
                assert row["value"] == pytest.approx(ref, abs=1e-5)
                checked += 1
    assert checked >= 4  # explaining both labels, some cases are defined


def test_soft_erasure_keeps_each_element_with_the_documented_probability(llama_clf) -> None:
    """With s̃ = ½ for a word, about half its embedding elements are zeroed in each draw."""
    from explainlm.engine import Engine
    from explainlm.evaluation.base import Case
    from explainlm.evaluation.soft_faithfulness import SoftNC, SoftNS

    engine = Engine(llama_clf)
    item = engine.prepare(TEXTS[:1])[0]
    e = explanation(llama_clf, TEXTS[0], [0.0, 1.0, 2.0, 1.0, 0.0])
    case = Case(e, np.asarray(e.word_scores), item)
    norm = normalised_scores(case.scores)
    np.testing.assert_allclose(norm, [0, 0.5, 1, 0.5, 0])
    x = llama_clf.wrapper.embed(torch.tensor([item.encoding.input_ids]))[0]
    word = np.asarray(item.encoding.word_ids)
    for metric, kept in (
        (SoftNC(samples=50), {0: 1.0, 1: 0.5, 2: 0.0}),
        (SoftNS(samples=50), {0: 0.0, 1: 0.5, 2: 1.0}),
    ):
        rows = metric.perturbed(engine, case, norm)
        same = (rows == x.unsqueeze(0)).float()  # an element is kept or zeroed
        for j, p in kept.items():
            toks = torch.tensor((word == j) & ~np.asarray(item.encoding.special))
            assert float(same[:, toks].mean()) == pytest.approx(p, abs=0.03)
        template = torch.tensor(np.asarray(item.encoding.special))
        assert bool(same[:, template].all())  # template and special tokens are never touched


def test_undefined_cases_are_nan(llama_clf) -> None:
    e = explanation(llama_clf, TEXTS[1], [0.5, 0.5, 0.5])  # constant: nothing to normalise
    res = evaluate([e], ["soft_nc", "soft_ns"], llama_clf, agreement=False)
    assert all(math.isnan(r["value"]) for r in res.rows)


def test_methods_share_the_random_draws(bert_clf) -> None:
    """Scores with the same min-max normalisation get the same value (common random numbers)."""
    a = explanation(bert_clf, TEXTS[2], [0.1, 0.9, 0.3, 0.0, 0.5, 0.2])
    b = explanation(bert_clf, TEXTS[2], [2 * s + 3 for s in a.word_scores])
    b.method = "other"
    res = evaluate([a, b], ["soft_nc", "soft_ns"], bert_clf, agreement=False)
    by = {(r["method"], r["metric"]): r["value"] for r in res.rows}
    for m in ("soft_nc", "soft_ns"):
        assert by[("m", m)] == pytest.approx(by[("other", m)], abs=1e-5)


def test_registered_as_faithfulness_metrics() -> None:
    for name in ("soft_nc", "soft_ns"):
        assert METRICS[name].family == "faithfulness" and METRICS[name].higher_is_better
