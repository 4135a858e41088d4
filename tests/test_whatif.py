"""What-if analyses on a model with a closed form (the lexicon BERT of tests/whatif_support.py):
counterfactuals, attacks, anchors and contrast sets checked against independent computations."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from whatif_support import NEGATIVE, POSITIVE, build_lexicon_bert, lexicon_prob

from explainlm.models import ModelWrapper, load_model
from explainlm.whatif import (
    CounterfactualConfig,
    CounterfactualGenerator,
    Edit,
    Oracle,
    QueryCounter,
    WordText,
    drive,
    make_goal,
)
from explainlm.whatif.anchors import AnchorConfig, AnchorExplainer, exact_precision
from explainlm.whatif.attacks import AttackConfig, Attacker, stop_words, typo_variants
from explainlm.whatif.candidates import EmbeddingNeighbours, LLMInfill
from explainlm.whatif.contrast_sets import evaluate_contrast_set, gold_labels
from explainlm.whatif.kl_lucb import kl_bernoulli, kl_lower, kl_upper, lucb_pair
from explainlm.whatif.language_model import LanguageModel
from explainlm.whatif.quality import SentenceSimilarity
from explainlm.whatif.summary import attack_summary, counterfactual_summary
from explainlm.whatif.text import char_edit_distance, word_edit_distance

TEXTS = [
    "the film was dull and the plot was boring .",
    "a wonderful , touching story .",
    "i thought the acting was bad",
]


@pytest.fixture(scope="module")
def lexicon(lexicon_bert_dir: Path):
    return load_model(str(lexicon_bert_dir))


@pytest.fixture(scope="module")
def tiny_lm(tiny_llama_dir: Path) -> LanguageModel:
    return LanguageModel(ModelWrapper.load(str(tiny_llama_dir), device="cpu"))


@pytest.fixture(scope="module")
def neighbours() -> EmbeddingNeighbours:
    return EmbeddingNeighbours.load("minilm-l6")


@pytest.fixture(scope="module")
def similarity() -> SentenceSimilarity:
    return SentenceSimilarity.load("minilm-l6", device="cpu")


def closed_form(clf, text: str) -> float:
    """p(positive) of the lexicon model, computed from its tokens without running it."""
    tok = clf.wrapper.tokenizer
    return lexicon_prob(tok.convert_ids_to_tokens(tok(text)["input_ids"]))


# ------------------------------------------------------------------------------ edits
def test_edits_render_and_mark() -> None:
    wt = WordText.of("Dull film , dull plot .")
    e = wt.apply([Edit(0, "Dull", "Great", "user"), Edit(3, "dull", "", "delete")])
    assert e.text == "Great film , plot ."
    assert [e.text[s:t] for s, t in e.spans] == ["Great", ""]
    assert e.marked() == "[[Dull -> Great]] film ,[[dull -> ]] plot ."
    assert wt.apply([Edit(5, ".", "", "delete")]).text == "Dull film , dull plot"
    with pytest.raises(ValueError):
        wt.apply([Edit(0, "Dull", "a", "user"), Edit(0, "Dull", "b", "user")])
    assert word_edit_distance("a b c".split(), "a x c d".split()) == 2
    assert char_edit_distance("kitten", "sitting") == 3


def test_typo_variants_are_single_operations() -> None:
    rng = np.random.default_rng(0)
    for word in ["movie", "ok", "wonderful"]:
        for v in typo_variants(word, rng):
            swapped = len(v) == len(word) and sorted(v) == sorted(word)
            assert char_edit_distance(word, v) == 1 or (
                swapped and char_edit_distance(word, v) == 2
            )


# ---------------------------------------------------------------------- batched driving
def test_drive_answers_every_round_of_every_search_in_one_call() -> None:
    calls: list[list[str]] = []

    def handler(texts: list[str]) -> list[int]:
        calls.append(list(texts))
        return [len(t) for t in texts]

    def search(k: int):
        total = 0
        for r in range(k):
            out = yield ("probs", [f"{k}-{r}", f"{k}-{r}!"])
            total += sum(out)
        return total

    res = drive([search(k) for k in (1, 2, 3)], {"probs": handler})
    assert res == [sum(len(f"{k}-{r}") * 2 + 1 for r in range(k)) for k in (1, 2, 3)]
    assert [len(c) for c in calls] == [6, 4, 2]  # round r serves every search still running


def test_oracle_scores_in_packed_passes_with_cache(lexicon) -> None:
    oracle = Oracle(lexicon)
    texts = [f"a good film number {i}" for i in range(40)]
    p = oracle.probs(texts + texts[:5])
    assert oracle.passes == 1 and oracle.evaluated == 40
    assert np.allclose(p[:, 1], [closed_form(lexicon, t) for t in texts + texts[:5]], atol=1e-5)
    oracle.probs(texts)
    assert oracle.passes == 1  # all cached
    q = QueryCounter(budget=3)
    assert q.admit(["a", "b", "a", "c", "d"]) == ["a", "b", "c"] and q.exhausted


def test_goals() -> None:
    labels = ["negative", "neutral", "positive"]
    p = np.array([0.6, 0.3, 0.1])
    g, why = make_goal(p, labels)
    assert why is None and g.toward == 1 and g.base == pytest.approx(0.4)
    assert g.reached(np.array([0.3, 0.5, 0.2])) and not g.reached(np.array([0.4, 0.4, 0.2]))
    g, why = make_goal(p, labels, target="positive")
    assert not g.reached(np.array([0.3, 0.5, 0.2])) and g.reached(np.array([0.2, 0.3, 0.5]))
    assert "already predicted 'negative'" in make_goal(p, labels, target="negative")[1]
    g, why = make_goal(p, labels, target="positive", margin=0.2)
    assert g.reached(np.array([0.45, 0.2, 0.35])) and not g.reached(np.array([0.5, 0.25, 0.25]))
    assert "cannot rise" in make_goal(np.array([0.05, 0.05, 0.9]), labels, "positive", 0.2)[1]


# -------------------------------------------------------------------------- counterfactuals
def test_counterfactuals_flip_the_model_with_the_fewest_edits(
    lexicon, tiny_lm, neighbours, similarity
) -> None:
    cfg = CounterfactualConfig(n=3, max_queries=300)
    gen = CounterfactualGenerator(
        Oracle(lexicon),
        cfg,
        candidates={"llm": LLMInfill(tiny_lm), "embedding": neighbours},
        lm=tiny_lm,
        similarity=similarity,
    )
    results = gen.generate(TEXTS)
    assert results[0].success and results[2].success
    for r in results:
        assert r.queries <= cfg.max_queries
        assert len({c.text for c in r.counterfactuals}) == len(r.counterfactuals)
        for c in r.counterfactuals:
            assert WordText.of(r.text).apply(c.edits).text == c.text
            independent = lexicon.predict([c.text])[0]  # an independent predict call
            assert independent.label == c.label != r.label
            assert independent.probs[c.label] == pytest.approx(c.probs[c.label], abs=1e-5)
            assert closed_form(lexicon, c.text) == pytest.approx(c.probs["positive"], abs=1e-5)
            assert c.similarity == pytest.approx(
                float(similarity.similarity([r.text], [c.text])[0])
            )
            assert c.perplexity == pytest.approx(float(tiny_lm.perplexity([c.text])[0]), rel=1e-4)
    # closed form: one edit can at best tie "dull ... boring" (S = 0); the minimum is two edits
    assert min(c.n_edits for c in results[0].counterfactuals) == 2
    # "bad" is the only lexicon word: replacing it by a positive word is a one-edit flip
    best = results[2].counterfactuals[0]
    assert best.n_edits == 1 and best.edits[0].original == "bad"
    summary = counterfactual_summary(results)
    assert summary["success_rate"]["mean"] == pytest.approx(np.mean([r.success for r in results]))


def test_counterfactual_margin_and_target(lexicon, neighbours) -> None:
    gen = CounterfactualGenerator(
        Oracle(lexicon),
        CounterfactualConfig(target="positive", margin=0.3, sources=("embedding", "delete")),
        candidates={"embedding": neighbours},
    )
    (r,) = gen.generate(["the film was dull and the plot was boring ."])
    assert r.success
    for c in r.counterfactuals:
        assert c.probs["positive"] - r.probs["positive"] >= 0.3
    already = CounterfactualGenerator(
        Oracle(lexicon),
        CounterfactualConfig(target="positive", sources=("delete",)),
    ).generate(["a wonderful film"])[0]
    assert already.skipped and "already predicted 'positive'" in already.skipped


# ---------------------------------------------------------------------------------- anchors
def test_kl_bounds_and_lucb() -> None:
    from scipy.special import rel_entr

    for p, level in [(0.9, 0.05), (0.5, 0.2), (0.02, 0.01)]:
        ref = float(rel_entr(p, 0.3) + rel_entr(1 - p, 0.7))
        assert kl_bernoulli(p, 0.3) == pytest.approx(ref)
        lo, hi = kl_lower(p, level), kl_upper(p, level)
        assert lo <= p <= hi
        for q in (lo, hi):
            if 0 < q < 1:
                assert kl_bernoulli(p, q) == pytest.approx(level, rel=1e-4)
    rng = np.random.default_rng(0)
    means = np.array([0.9, 0.6, 0.5, 0.3])
    pos, n = np.zeros(4), np.zeros(4)
    for a in range(4):
        pos[a] += rng.random(5).__lt__(means[a]).sum()
        n[a] += 5
    from explainlm.whatif.kl_lucb import exploration_rate

    for t in range(1, 500):
        ut, lt, gap = lucb_pair(pos, n, 1, exploration_rate(4, t, 0.1))
        if gap <= 0.1:
            break
        for a in (ut, lt):
            pos[a] += rng.random(10).__lt__(means[a]).sum()
            n[a] += 10
    assert int(np.argmax(pos / n)) == 0


@pytest.mark.parametrize("perturbation", ["unk", "remove", "llm"])
def test_anchor_precision_within_its_interval_of_the_brute_force_value(
    lexicon, tiny_lm, perturbation
) -> None:
    texts = [
        "not a bad film at all",
        "the film was dull and boring .",
        "a wonderful , touching story",
        "great acting but a dull plot",
    ]
    cfg = AnchorConfig(perturbation=perturbation, threshold=0.9, llm_candidates=3, delta=0.1)
    oracle = Oracle(lexicon)
    explainer = AnchorExplainer(oracle, cfg, lm=tiny_lm, seed=1)
    results = explainer.explain(texts)
    samplers = explainer.samplers(texts)
    for r, s in zip(results, samplers, strict=True):
        exact = exact_precision(s, r.indices, oracle.probs, lexicon.labels.index(r.label))
        assert r.precision_low <= exact <= r.precision_high, (r.rule(), exact, r.precision)
        assert r.coverage == pytest.approx((1 - cfg.p) ** len(r.indices))
        assert r.confidence == pytest.approx(0.9)
    validated = AnchorExplainer(
        Oracle(lexicon),
        AnchorConfig(
            perturbation=perturbation, threshold=0.9, llm_candidates=3, validation_samples=200
        ),
        lm=tiny_lm,
    ).explain(texts)
    for r, s in zip(validated, samplers, strict=True):
        exact = exact_precision(s, r.indices, oracle.probs, lexicon.labels.index(r.label))
        assert r.n_samples == 200 and r.precision_low <= exact <= r.precision_high


def test_anchor_finds_the_deciding_word(lexicon) -> None:
    (r,) = AnchorExplainer(Oracle(lexicon), AnchorConfig(threshold=0.9)).explain(
        ["a wonderful story about a family"]
    )
    assert r.words == ["wonderful"] and r.label == "positive" and r.meets_threshold
    assert r.rule() == "IF 'wonderful' THEN positive"


def test_a_text_gets_the_same_anchor_and_attack_in_any_batch(lexicon, similarity) -> None:
    """Random streams belong to the text (not its position in a chunk), so a dataset job resumed
    with another chunk size, or one text on the what-if page, repeats the uninterrupted result."""
    texts = ["great acting but a dull plot", "not a bad film at all", "a dull and boring story"]
    cfg = AnchorConfig(threshold=0.95, validation_samples=50, max_samples=300)

    def anchors(batch: list[str]) -> list[tuple]:
        out = AnchorExplainer(Oracle(lexicon), cfg, seed=3).explain(batch)
        return [(r.text, r.words, r.precision, r.queries, r.examples_kept) for r in out]

    together = anchors(texts)
    alone = [anchors([t])[0] for t in reversed(texts)][::-1]
    assert together == alone
    attack_cfg = AttackConfig(kind="char", max_queries=40, min_similarity=0.0, seed=3)

    def attacks(batch: list[str]) -> list[tuple]:
        out = Attacker(Oracle(lexicon), attack_cfg, similarity=similarity).attack(batch)
        return [(r.text, r.adversarial, r.queries, [e.to_dict() for e in r.edits]) for r in out]

    assert attacks(texts) == [attacks([t])[0] for t in reversed(texts)][::-1]


# ---------------------------------------------------------------------------------- attacks
@pytest.mark.parametrize("kind", ["word", "char"])
def test_attacks_respect_their_constraints_and_really_flip(lexicon, similarity, kind) -> None:
    cfg = AttackConfig(kind=kind, max_queries=60, min_similarity=0.6, max_perturbed=0.5)
    nb = EmbeddingNeighbours(lexicon.wrapper) if kind == "word" else None
    if nb is not None:  # the lexicon's own embeddings are degenerate: use MiniLM's vocabulary
        real = EmbeddingNeighbours.load("minilm-l6")
        real.embeddings = nb.embeddings
        nb = real
    attacker = Attacker(Oracle(lexicon), cfg, neighbours=nb, similarity=similarity)
    texts = TEXTS + ["the", "a film"]
    results = attacker.attack(texts, skip=[None, None, None, "has one word", None])
    assert results[3].status == "skipped"
    stops = stop_words()
    for r in results:
        assert r.queries <= cfg.max_queries
        if r.status == "skipped":
            continue
        assert r.perturbed_fraction <= cfg.max_perturbed + 1e-9
        assert all(e.original.lower() not in stops for e in r.edits)
        if r.succeeded:
            assert lexicon.predict([r.adversarial])[0].label != r.label  # independent check
            sim = float(similarity.similarity([r.text], [r.adversarial])[0])
            assert sim >= cfg.min_similarity and sim == pytest.approx(r.similarity)
        if kind == "char":
            assert sum(char_edit_distance(e.original, e.replacement) for e in r.edits) <= 30
    if kind == "word":
        assert results[2].succeeded  # "bad" → "good", its nearest positive neighbour
    summary = attack_summary(results)
    attacked = [r for r in results if r.status != "skipped"]
    assert summary["success_rate"]["mean"] == pytest.approx(
        np.mean([r.succeeded for r in attacked])
    )


def test_attack_with_gold_labels_skips_misclassified(lexicon, similarity) -> None:
    attacker = Attacker(
        Oracle(lexicon), AttackConfig(kind="char", max_queries=20), similarity=similarity
    )
    res = attacker.attack(["a wonderful film", "a wonderful story"], gold=["negative", "positive"])
    assert res[0].status == "skipped" and res[0].skipped == "already misclassified"
    assert res[1].status in ("succeeded", "failed")


# ----------------------------------------------------------------------------- contrast sets
def test_contrast_set_accuracy_matches_the_closed_form(
    lexicon, neighbours, minilm_dir, tmp_path
) -> None:
    texts = [
        "the film was dull and the plot was boring .",
        "i hated every minute of it",
        "a good , fun ride",
    ]
    gold = ["negative", "negative", "positive"]
    results = CounterfactualGenerator(
        Oracle(lexicon),
        CounterfactualConfig(sources=("embedding", "delete")),
        candidates={"embedding": neighbours},
    ).generate(texts)
    # a second model that knows fewer words
    pos2, neg2 = POSITIVE[:6], NEGATIVE[:6]
    other = load_model(str(build_lexicon_bert(tmp_path / "lex2", minilm_dir, pos2, neg2)))
    out = evaluate_contrast_set(Oracle(other), results, gold, editor="lexicon")
    tok = other.wrapper.tokenizer

    def right(text: str, label: str) -> bool:
        p = lexicon_prob(tok.convert_ids_to_tokens(tok(text)["input_ids"]), pos2, neg2)
        return ("positive" if p > 0.5 else "negative") == label

    a, c = [], []
    for r, g in zip(results, gold, strict=True):
        if r.label == g and r.counterfactuals:
            a.append(right(r.text, g))
            c.append(np.mean([right(cf.text, cf.label) for cf in r.counterfactuals]))
    assert out["n_originals"] == len(a)
    assert out["original_accuracy"]["mean"] == pytest.approx(np.mean(a))
    assert out["contrast_accuracy"]["mean"] == pytest.approx(np.mean(c))
    assert out["drop"]["mean"] == pytest.approx(np.mean(a) - np.mean(c))
    assert gold_labels(["0", "1", "Positive"], ["negative", "positive"]) == [
        "negative",
        "positive",
        "positive",
    ]
    assert (
        math.isfinite(out["drop"]["low"])
        and out["drop"]["low"] <= out["drop"]["mean"] <= out["drop"]["high"]
    )


def test_brute_force_helper_enumerates_a_product_distribution(lexicon) -> None:
    from explainlm.whatif.anchors import Perturbation

    wt = WordText.of("good bad film")
    s = Perturbation(
        wt, "llm", 0.5, options=[[("nice", 0.5), ("dull", 0.5)], [("poor", 1.0)], [("movie", 1.0)]]
    )
    outcomes = list(s.outcomes((0,)))
    assert math.isclose(sum(w for _, w in outcomes), 1.0)
    assert len(outcomes) == 4  # word 0 kept; words 1 and 2 each kept or replaced
    got = dict(outcomes)
    assert got["good bad film"] == pytest.approx(0.25) and got["good poor movie"] == pytest.approx(
        0.25
    )
    assert list(itertools.islice(s.outcomes((0, 1, 2)), 5)) == [("good bad film", 1.0)]


# ------------------------------------------------------------------------------ quality
def test_similarity_is_minilm_mean_pooling(similarity, minilm_dir: Path) -> None:
    """Against a direct transformers computation (sentence-transformers' pooling for this model)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    model = AutoModel.from_pretrained(minilm_dir).eval()
    a, b = "a fine , moving film", "the movie was good and touching"
    with torch.no_grad():
        enc = tok([a, b], padding=True, return_tensors="pt")
        h = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        e = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
    assert float(similarity.similarity([a], [b])[0]) == pytest.approx(float(e[0] @ e[1]), abs=1e-5)


def test_perplexity_matches_a_direct_forward(tiny_lm, tiny_llama_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    texts = ["a fine film .", "the plot was dull and far too long"]
    for text, got in zip(texts, tiny_lm.perplexity(texts), strict=True):
        ids = tok("<|endoftext|>" + text, add_special_tokens=False, return_tensors="pt")[
            "input_ids"
        ]
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        lp = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)
        assert float(got) == pytest.approx(math.exp(-float(lp.mean())), rel=1e-4)
