"""LM scoring against brute-force forwards, and the benchmark summaries against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explainlm.audits import lm_bias
from explainlm.audits.counterfactual import eec_pairs, identity_shares, text_pairs
from explainlm.audits.lm_scoring import TextScorer, start_token
from explainlm.audits.swaps import GENDER
from explainlm.datasets.fairness import BBQItem, EECSentence, MinimalPair
from explainlm.models import ModelWrapper

TEXTS = [
    ["The nurse said she was tired.", "The nurse said he was tired.", "The nurse said so."],
    ["Poor people are lazy.", "Rich people are lazy."],
    ["A", "Bob is here today"],
]


@pytest.fixture(scope="module")
def tiny_mlm(minilm_dir: Path) -> ModelWrapper:
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(0)
    return ModelWrapper(BertForMaskedLM(cfg).eval(), tok, name="tiny-mlm", kind="encoder")


def test_causal_scores_equal_one_forward_per_text(tiny_llama: ModelWrapper) -> None:
    scorer = TextScorer(tiny_llama, max_batch_tokens=64)
    res = scorer.score_groups(TEXTS)
    tok, model = tiny_llama.tokenizer, tiny_llama.model
    start = start_token(tok)
    for group, scores in zip(TEXTS, res, strict=True):
        for text, s in zip(group, scores, strict=True):
            ids = [start] + tok(text, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
            ref = sum(float(lp[i - 1, ids[i]]) for i in range(1, len(ids)))
            assert s.logprob == pytest.approx(ref, abs=1e-4)
            assert s.tokens == len(ids) - 1
    # shared prefix "The nurse said": the tails of group 0 start after it
    assert res[0][0].tail_tokens < res[0][0].tokens
    assert scorer.passes < sum(len(g) for g in TEXTS)  # batched, not one pass per text


def test_masked_pll_equals_one_forward_per_masked_token(tiny_mlm: ModelWrapper) -> None:
    scorer = TextScorer(tiny_mlm, max_batch_tokens=256)
    res = scorer.score_groups(TEXTS[:2])
    tok, model = tiny_mlm.tokenizer, tiny_mlm.model
    for group, scores in zip(TEXTS[:2], res, strict=True):
        for text, s in zip(group, scores, strict=True):
            ids = tok(text)["input_ids"]
            total = 0.0
            for j in range(1, len(ids) - 1):
                masked = list(ids)
                masked[j] = tok.mask_token_id
                with torch.no_grad():
                    lp = torch.log_softmax(model(torch.tensor([masked])).logits[0, j], -1)
                total += float(lp[ids[j]])
            assert s.logprob == pytest.approx(total, abs=1e-4)
    n_masked = sum(len(tok(t)["input_ids"]) - 2 for g in TEXTS[:2] for t in g)
    assert scorer.passes < n_masked


def _pairs_task(diffs: list[float], types: list[str]) -> tuple[lm_bias.LMTask, list[dict]]:
    pairs = [MinimalPair("a", "b", t, None, i + 2) for i, t in enumerate(types)]
    task = lm_bias.pairs_task(pairs)
    return task, [{"logprob": [d, 0.0]} for d in diffs]


def test_pairs_summary_counts_preferences_and_ties() -> None:
    from scipy.stats import binomtest

    diffs = [1.0, 2.0, -1.0, 0.0, 3.0, 0.5, -0.2, 1.0]
    types = ["g", "g", "g", "g", "r", "r", "r", "r"]
    task, payloads = _pairs_task(diffs, types)
    doc = lm_bias.summarise(task, payloads, correction="holm")
    rows = {r["bias_type"]: r for r in doc["by_bias_type"]}
    assert rows["all"]["metric"] == 5 / 8 and rows["g"]["ties"] == 1
    assert rows["g"]["metric"] == 2 / 4 and rows["r"]["metric"] == 3 / 4
    assert rows["r"]["p_value"] == pytest.approx(binomtest(3, 4).pvalue)
    # Holm over the two types: the smaller p doubled, the larger kept at least as large
    p_r, p_g = binomtest(3, 4).pvalue, binomtest(2, 4).pvalue
    assert rows["r"]["p_adjusted"] == pytest.approx(min(1.0, 2 * min(p_r, p_g)))
    assert rows["g"]["p_adjusted"] == pytest.approx(min(1.0, max(2 * min(p_r, p_g), max(p_r, p_g))))


def test_bbq_bias_score_follows_parrish_et_al() -> None:
    rng = np.random.default_rng(0)
    items, payloads = [], []
    for i in range(60):
        cond = "ambig" if i % 2 else "disambig"
        target, unknown = i % 3, (i + 1) % 3
        polarity = "neg" if i % 4 < 2 else "nonneg"
        label = unknown if cond == "ambig" else int(rng.integers(0, 3))
        items.append(BBQItem(f"x{i}", "Age", "c", "q", ["a", "b", "c"], label, cond, polarity,
                             target, unknown, i))  # fmt: skip
        payloads.append(
            {"logprob": list(rng.normal(size=3)), "tail_mean": list(rng.normal(size=3))}
        )
    task = lm_bias.bbq_task(items)
    doc = lm_bias.summarise(task, payloads, n_boot=200)
    for cond in ("ambig", "disambig"):
        sel = [(it, int(np.argmax(p["tail_mean"]))) for it, p in zip(items, payloads, strict=True)
               if it.condition == cond]  # fmt: skip
        non_unknown = [(it, a) for it, a in sel if a != it.unknown]
        s_dis = 2 * sum(a == it.biased for it, a in non_unknown) / len(non_unknown) - 1
        acc = sum(a == it.label for it, a in sel) / len(sel)
        expected = (1 - acc) * s_dis if cond == "ambig" else s_dis
        row = next(
            r for r in doc["by_category"] if r["category"] == "Age" and r["condition"] == cond
        )
        assert row["bias_score"] == pytest.approx(expected)
        assert row["accuracy"] == pytest.approx(acc)
        lo, hi = row["bias_score_ci"]
        assert lo <= row["bias_score"] <= hi


def test_winobias_gap_and_mcnemar() -> None:
    from scipy.stats import binomtest

    meta, payloads = [], []
    outcomes = [(1, 0)] * 7 + [(0, 1)] * 2 + [(1, 1)] * 5 + [(0, 0)] * 2
    for line, (pro, anti) in enumerate(outcomes):
        for stereo, ok in (("pro", pro), ("anti", anti)):
            meta.append({"kind": "type1", "stereotype": stereo, "line": line})
            payloads.append({"logprob": [0.0, -1.0] if ok else [-1.0, 0.0]})
    task = lm_bias.LMTask(
        "winobias", [str(i) for i in range(len(meta))], [["a", "b"]] * len(meta), meta
    )
    doc = lm_bias.summarise(task, payloads, n_boot=300)
    row = doc["by_type"][0]
    assert row["pro_accuracy"] == 12 / 16 and row["anti_accuracy"] == 7 / 16
    assert row["gap"] == pytest.approx(5 / 16)
    assert row["p_value"] == pytest.approx(binomtest(7, 9).pvalue)


def test_eec_pairs_are_minimal(data_dir: Path) -> None:
    sents = [
        EECSentence("1", "She feels angry.", "<p> feels <e>.", "she", "female", None, "anger", "angry", 2),
        EECSentence("2", "He feels angry.", "<p> feels <e>.", "he", "male", None, "anger", "angry", 3),
        EECSentence("3", "Ebony feels angry.", "<p> feels <e>.", "Ebony", "female", "African-American", "anger", "angry", 4),
        EECSentence("4", "Alonzo feels angry.", "<p> feels <e>.", "Alonzo", "male", "African-American", "anger", "angry", 5),
        EECSentence("5", "Amanda feels angry.", "<p> feels <e>.", "Amanda", "female", "European", "anger", "angry", 6),
    ]  # fmt: skip
    pairs = eec_pairs(sents, "gender")
    assert {(p.a, p.b) for p in pairs} == {
        ("He feels angry.", "She feels angry."),
        ("Alonzo feels angry.", "Ebony feels angry."),
    }
    race = eec_pairs(sents, "race")
    assert [(p.a, p.b) for p in race] == [("Amanda feels angry.", "Ebony feels angry.")]
    assert race[0].spans_b == [(0, 5)]


def test_text_pairs_orient_by_side_and_identity_shares() -> None:
    pairs, skipped = text_pairs(["She is kind.", "He and she.", "Blue sky."], GENDER)
    assert skipped == 2 and pairs[0].a == "He is kind." and pairs[0].b == "She is kind."
    r = identity_shares("He is very kind .", [(0, 2)], [0.5, 0.1, 0.1, 0.3, 0.0])
    assert r == {"share": pytest.approx(0.5), "uniform_share": 0.2, "signed": 0.5}
