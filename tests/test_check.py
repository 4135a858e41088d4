"""The faithfulness check on every explanation, against the evaluation metrics, brute-force loops
over the model, and the passes it saves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainlm.attribution import explain
from explainlm.check import CheckConfig
from explainlm.engine import Engine
from explainlm.engine.contract import item_rng
from explainlm.evaluation import evaluate
from explainlm.generation import explain_generation
from explainlm.models import Generator, make_task

TEXTS = ["a wonderful , touching film that moved me", "dull and boring , a waste of time"]


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return make_task(tiny_bert)


def top_sets(scores, fractions=(0.1, 0.2, 0.5)) -> list[list[int]]:
    """Top ⌈q·d⌉ features by score (ties: earlier first), duplicates of the previous set dropped."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    out: list[list[int]] = []
    for q in fractions:
        k = max(1, int(np.ceil(q * len(scores) - 1e-9)))
        s = sorted(order[:k])
        if not out or s != out[-1]:
            out.append(s)
    return out


def brute_force(clf, text: str, label: str, scores) -> tuple[float, float]:
    words = text.split(" ")
    p = clf.predict([text])[0].probs[label]
    comp, suff = [], []
    for s in top_sets(scores):
        without = " ".join(w for j, w in enumerate(words) if j not in s)
        only = " ".join(w for j, w in enumerate(words) if j in s)
        comp.append(p - clf.predict([without])[0].probs[label])
        suff.append(p - clf.predict([only])[0].probs[label])
    return float(np.mean(comp)), float(np.mean(suff))


def test_check_equals_brute_force_and_the_evaluation_metrics(clf) -> None:
    res = explain(TEXTS, clf, ["occlusion", "grad_x_input", "random"])
    for e in res:
        comp, suff = brute_force(clf, e.text, e.label, e.word_scores)
        assert e.check["comprehensiveness"] == pytest.approx(comp, abs=1e-5)
        assert e.check["sufficiency"] == pytest.approx(suff, abs=1e-5)
        assert e.check["k"] == [len(s) for s in top_sets(e.word_scores)]
    params = {"bins": (0.1, 0.2, 0.5), "rounding": "ceil"}
    ev = evaluate(
        res,
        ["comprehensiveness", "sufficiency"],
        clf,
        metric_params={"comprehensiveness": params, "sufficiency": params},
    )
    by = {(r["example"], r["method"], r["metric"]): r["value"] for r in ev.rows}
    for i, e in enumerate(res):
        t = i // 3
        assert e.check["comprehensiveness"] == pytest.approx(by[(t, e.method, "comprehensiveness")])
        assert e.check["sufficiency"] == pytest.approx(by[(t, e.method, "sufficiency")])


def test_random_baseline_is_the_seeded_random_ranking(clf) -> None:
    res = explain(TEXTS[:1], clf, ["occlusion"], check=CheckConfig(random_rankings=2))
    e = res[0]
    engine = Engine(clf)
    item = engine.prepare(TEXTS[:1])[0]
    rng = item_rng(0, engine.item_key(item))
    draws = [brute_force(clf, e.text, e.label, rng.permutation(len(e.words))) for _ in range(2)]
    assert e.check["random"]["rankings"] == 2
    assert e.check["random"]["comprehensiveness"] == pytest.approx(
        np.mean([d[0] for d in draws]), abs=1e-5
    )
    assert e.check["random"]["sufficiency"] == pytest.approx(
        np.mean([d[1] for d in draws]), abs=1e-5
    )


def test_check_reuses_the_methods_passes(clf, monkeypatch) -> None:
    """Exact KernelSHAP scored every coalition, so its check (and the random baseline) needs none."""
    counts = []
    real = Engine.score_encodings

    def counting(self, items, variants):
        counts.append(sum(len(v) for v in variants))
        return real(self, items, variants)

    monkeypatch.setattr(Engine, "score_encodings", counting)
    text = "dull and boring , really"
    explain([text], clf, ["kernel_shap"])
    assert counts == [2**5, 0]
    counts.clear()
    explain([text], clf, ["kernel_shap"], check=False)
    assert counts == [2**5]
    counts.clear()
    # two methods on one text: the check's rows are scored in one call, shared rows once
    occ, rnd = explain([text], clf, ["occlusion", "random"])
    engine = Engine(clf)
    perm = item_rng(0, engine.item_key(engine.prepare([text])[0])).permutation(5)
    rows = set()
    for scores in (occ.word_scores, rnd.word_scores, list(perm)):
        for s in top_sets(scores):
            rows.add(tuple(j not in s for j in range(5)))  # comprehensiveness: the set removed
            rows.add(tuple(j in s for j in range(5)))  # sufficiency: only the set kept
    leave_one_out = {tuple(j != i for j in range(5)) for i in range(5)}
    assert counts == [5, len(rows - leave_one_out)]
    assert [e.check is None for e in explain([text], clf, ["occlusion"], check=False)] == [True]


def test_generation_check_equals_brute_force(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    prompt = "a wonderful , touching film that moved me"
    a = explain_generation([prompt], gen, ["occlusion"], max_new_tokens=3)[0]
    w, tok = gen.wrapper, gen.wrapper.tokenizer
    cont = gen.generate([prompt], max_new_tokens=3)[0].token_ids

    def total_logprob(text: str) -> float:
        ids = tok(text)["input_ids"] or [tok.bos_token_id or tok.eos_token_id]
        x = torch.tensor([ids + cont])
        with torch.no_grad():
            logp = torch.log_softmax(w.model(input_ids=x).logits[0].float(), -1)
        return float(sum(logp[len(ids) - 1 + k, t] for k, t in enumerate(cont)))

    words = prompt.split(" ")
    ranking = [sum(row[j] for row in a.matrix) for j in range(len(words))]
    assert a.feature_scores() == pytest.approx(ranking)
    full = total_logprob(prompt)
    comp, suff = [], []
    for s in top_sets(ranking):
        comp.append(full - total_logprob(" ".join(x for j, x in enumerate(words) if j not in s)))
        suff.append(full - total_logprob(" ".join(x for j, x in enumerate(words) if j in s)))
    assert a.check["target_value"] == pytest.approx(full, abs=1e-4)
    assert a.check["comprehensiveness"] == pytest.approx(np.mean(comp), abs=1e-4)
    assert a.check["sufficiency"] == pytest.approx(np.mean(suff), abs=1e-4)
