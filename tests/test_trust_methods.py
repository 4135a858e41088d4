"""The faithful-attribution candidates (issue 12) against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_methods import target_fn  # the independent target closure, shared

from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.methods import get_method
from explainlm.methods.attention_mask_ig import gated_mask
from explainlm.methods.context_cite import ablation_masks, lasso_surrogate, text_key
from explainlm.methods.expected_gradients import ordinary_token_ids
from explainlm.methods.gradient import baseline_embeddings, ig_alphas
from explainlm.methods.reagent import Reagent
from explainlm.methods.retarget import text_generator
from explainlm.models import ZeroShotClassifier, make_task
from explainlm.models.words import remove_words
from explainlm.targets import ClassTarget

TEXTS = ["a wonderful , touching film", "dull and boring", "not bad at all , really"]
LOG_ODDS = ClassTarget("log_odds")


@pytest.fixture(scope="module")
def bert_clf(tiny_bert):
    return make_task(tiny_bert)


@pytest.fixture(scope="module")
def llama_clf(tiny_llama):
    return ZeroShotClassifier(tiny_llama)


@pytest.fixture(params=["bert", "llama"])
def clf(request, bert_clf, llama_clf):
    return bert_clf if request.param == "bert" else llama_clf


def grad_at(f, emb: torch.Tensor) -> torch.Tensor:
    e = emb.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(e).sum(), e)
    return g


def test_log_odds_is_the_contrastive_logit_difference(clf) -> None:
    items = Engine(clf).prepare(TEXTS)
    for it in items:
        s = it.scores.unsqueeze(0)
        other = 1 - it.label_idx
        value = LOG_ODDS.value(s, torch.tensor([it.label_idx]))
        assert float(value) == pytest.approx(float(s[0, it.label_idx] - s[0, other]), abs=1e-5)


def test_contrastive_ig_equals_captum_on_the_log_odds(clf) -> None:
    from captum.attr import IntegratedGradients as CaptumIG

    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    ours = get_method("contrastive_ig", steps=16).attribute(engine, items, "token")
    for it, e in zip(items, ours, strict=True):
        f, emb = target_fn(clf, it, LOG_ODDS)
        base = baseline_embeddings(engine, emb[0], it, "pad").unsqueeze(0).detach()
        ref, delta = CaptumIG(f).attribute(
            emb, baselines=base, n_steps=16, method="gausslegendre", return_convergence_delta=True
        )
        np.testing.assert_allclose(e.token_scores, ref[0].sum(-1).numpy(), rtol=1e-3, atol=1e-6)
        assert e.delta == pytest.approx(float(delta), abs=1e-4)
        assert e.target == "prob"  # the explanation still reports the engine's target


def test_contrastive_grad_x_input_equals_autograd(clf) -> None:
    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    ours = get_method("contrastive_grad_x_input").attribute(engine, items, "token")
    for it, e in zip(items, ours, strict=True):
        f, emb = target_fn(clf, it, LOG_ODDS)
        ref = (grad_at(f, emb) * emb)[0].sum(-1)
        special = torch.tensor(it.encoding.special)
        np.testing.assert_allclose(
            np.asarray(e.token_scores)[~special.numpy()],
            ref[~special].numpy(),
            rtol=1e-4,
            atol=1e-6,
        )


@pytest.mark.parametrize("baseline", ["vocab", "pad"])
def test_expected_gradients_equals_a_per_baseline_loop(clf, baseline: str) -> None:
    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    n, noise = 6, 0.2
    method = get_method("expected_gradients", samples=n, baseline=baseline, noise=noise, seed=3)
    ours = method.attribute(engine, items, "token")
    pool = ordinary_token_ids(engine)
    for it, e in zip(items, ours, strict=True):
        f, emb = target_fn(clf, it, LOG_ODDS)
        x = emb[0]
        special = torch.tensor(it.encoding.special).view(-1, 1)
        # the same draws, in the documented order: baseline tokens, noise, then α
        gen = text_generator(3, it.text)
        if baseline == "vocab":
            ids = pool[torch.randint(len(pool), (n, x.shape[0]), generator=gen)]
            bases = clf.wrapper.embed(ids).detach()
        else:
            bases = baseline_embeddings(engine, x, it, "pad").detach().expand(n, -1, -1)
        bases = bases + torch.randn(bases.shape, generator=gen) * noise * float(x.std())
        alphas = torch.rand((n, 1, 1), generator=gen)
        total = torch.zeros(x.shape[0])
        for k in range(n):
            b = torch.where(special, x, bases[k])
            point = (b + alphas[k] * (x - b)).unsqueeze(0)
            total += ((x - b) * grad_at(f, point)[0]).sum(-1)
        np.testing.assert_allclose(e.token_scores, (total / n).numpy(), rtol=1e-3, atol=1e-6)


def test_expected_gradients_with_a_fixed_baseline_estimates_integrated_gradients(
    llama_clf,
) -> None:
    engine = Engine(llama_clf)
    items = engine.prepare(TEXTS[:1])
    eg = get_method("expected_gradients", samples=2000, baseline="pad").attribute(engine, items)
    ig = get_method("contrastive_ig", steps=64).attribute(engine, items)
    a, b = np.asarray(eg[0].word_scores), np.asarray(ig[0].word_scores)
    # a Monte Carlo estimate of the same integral: close relative to the scores' spread
    assert np.abs(a - b).max() < 0.1 * np.abs(b).max()


@pytest.mark.parametrize("granularity", ["word", "token"])
def test_sequential_ig_equals_a_hand_loop(clf, granularity: str) -> None:
    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    steps = 4
    ours = get_method("sequential_ig", steps=steps).attribute(engine, items, granularity)
    alphas, weights = ig_alphas(steps, "gausslegendre")
    for it, e in zip(items, ours, strict=True):
        f, emb = target_fn(clf, it, LOG_ODDS)
        x = emb[0]
        base = baseline_embeddings(engine, x, it, "mask").detach()
        enc = it.encoding
        if granularity == "word":
            groups = [
                [t for t, w in enumerate(enc.word_ids) if w == j and not enc.special[t]]
                for j in range(len(enc.word_spans))
            ]
        else:
            groups = [[t] for t in enc.text_token_positions]
        ref = np.zeros(len(enc))
        for toks in groups:
            avg = torch.zeros_like(x)
            for a, w in zip(alphas, weights, strict=True):
                point = x.clone()
                point[toks] = base[toks] + float(a) * (x[toks] - base[toks])
                avg += float(w) * grad_at(f, point.unsqueeze(0))[0]
            ref[toks] = ((x - base) * avg)[toks].sum(-1).numpy()
        np.testing.assert_allclose(e.token_scores, ref, rtol=1e-3, atol=1e-6)


def test_sequential_ig_word_scores_are_single_word_path_differences(llama_clf) -> None:
    """Each word's path is IG with the others fixed: its total is f(x) − f(x, word at baseline)."""
    engine = Engine(llama_clf)
    it = engine.prepare(TEXTS[:1])[0]
    e = get_method("sequential_ig", steps=48).attribute(engine, [it])[0]
    f, emb = target_fn(llama_clf, it, LOG_ODDS)
    x = emb[0]
    base = baseline_embeddings(engine, x, it, "mask").detach()
    with torch.no_grad():
        full = float(f(emb))
        for j, score in enumerate(e.word_scores):
            toks = [t for t, w in enumerate(it.encoding.word_ids) if w == j]
            ablated = x.clone()
            ablated[toks] = base[toks]
            assert score == pytest.approx(full - float(f(ablated.unsqueeze(0))), abs=2e-3)


def test_sequential_ig_spends_its_budget() -> None:
    m = get_method("sequential_ig")
    assert [m.steps_for(d) for d in (1, 5, 32, 100)] == [32, 6, 1, 1]


def test_context_cite_equals_sklearn_lasso_on_the_same_ablations(clf) -> None:
    from sklearn.linear_model import Lasso
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    ours = get_method("context_cite", n_samples=24, alpha=0.005).attribute(engine, items)
    for it, e in zip(items, ours, strict=True):
        d = len(it.encoding.word_spans)
        masks = ablation_masks(d, 24, 0.5, [0, text_key(it.text)])
        texts = [remove_words(it.text, it.encoding.word_spans, row) for row in masks]
        scores = clf.scores(clf.encode(texts, allow_empty=True))
        y = LOG_ODDS.value(scores, torch.full((len(texts),), it.label_idx)).detach().numpy()
        scaler, lasso = StandardScaler(), Lasso(alpha=0.005, random_state=0)
        make_pipeline(scaler, lasso).fit(masks.astype(float), y)
        ref = np.divide(lasso.coef_, scaler.scale_, out=np.zeros(d), where=scaler.scale_ > 0)
        np.testing.assert_allclose(e.word_scores, ref, rtol=1e-4, atol=1e-6)


def test_lasso_surrogate_recovers_a_sparse_linear_model() -> None:
    rng = np.random.default_rng(0)
    masks = ablation_masks(12, 64, 0.5, 1)
    truth = np.zeros(12)
    truth[[2, 7]] = [1.5, -0.8]
    y = masks @ truth + 0.3 + rng.normal(0, 0.01, 64)
    coef, intercept = lasso_surrogate(masks, y, alpha=0.001)
    np.testing.assert_allclose(coef, truth, atol=0.03)
    assert intercept == pytest.approx(0.3, abs=0.03)
    # a feature kept in every ablation gets no score instead of a division by zero
    masks[:, 0] = True
    assert lasso_surrogate(masks, y, alpha=0.001)[0][0] == 0.0


def test_reagent_update_rule_equals_a_loop() -> None:
    m = Reagent(probes=3, steps=5)
    rng = np.random.default_rng(1)
    replaced = rng.random((15, 4)) < 0.3
    delta = rng.uniform(-0.5, 0.5, 15)
    ref = np.zeros(4)
    for p in range(3):
        s = np.zeros(4)
        for k in range(5):
            r = p * 5 + k
            for j in range(4):
                q = 0.5 + 0.5 * delta[r] if replaced[r, j] else 0.5 - 0.5 * delta[r]
                s[j] += np.log(q / (1 - q))
        ref += np.exp(s) / np.exp(s).sum() / 3
    np.testing.assert_allclose(m.importance(replaced, delta), ref, rtol=1e-10)


def test_reagent_ranks_the_feature_whose_replacement_drops_f_first() -> None:
    m = Reagent(probes=16, steps=4)
    rng = np.random.default_rng(2)
    replaced = rng.random((64, 6)) < 0.3
    delta = 0.4 * replaced[:, 3] + rng.normal(0, 0.02, 64)
    assert int(np.argmax(m.importance(replaced, delta))) == 3


def _hf_scores(clf, enc, keep: np.ndarray) -> torch.Tensor:
    """Class scores from the model's own 2-D attention mask with some tokens masked out."""
    batch = clf.wrapper.collate([enc])
    mask = torch.tensor(keep, dtype=torch.long).unsqueeze(0)
    rep = type(batch)(batch.encodings, batch.input_ids, mask, batch.position_ids, "left")
    return clf.class_scores(rep)


def test_attention_gates_reproduce_the_model_at_one_and_masking_at_zero(llama_clf) -> None:
    engine = Engine(llama_clf)
    items = engine.prepare(TEXTS)
    w = llama_clf.wrapper
    batch = w.collate([it.encoding for it in items])  # left padding: lengths differ
    owners = [np.where(it.encoding.special, -1, it.encoding.word_ids) for it in items]
    d = max(int(o.max()) + 1 for o in owners)
    with torch.no_grad():
        ones = gated_mask(batch, owners, torch.ones(len(items), d), 1)
        rep = type(batch)(batch.encodings, batch.input_ids, ones, batch.position_ids, "left")
        np.testing.assert_allclose(
            llama_clf.class_scores(rep).numpy(), torch.stack([it.scores for it in items]), atol=1e-4
        )
        # gate 0 on word 1 of the first text = the model's own mask with those tokens hidden
        it = items[0]
        gates = torch.ones(1, d)
        gates[0, 1] = 0.0
        one = w.collate([it.encoding])
        m = gated_mask(one, owners[:1], gates, 1)
        rep = type(one)(one.encodings, one.input_ids, m, one.position_ids, "left")
        keep = np.asarray(it.encoding.word_ids) != 1
        np.testing.assert_allclose(
            llama_clf.class_scores(rep).numpy(), _hf_scores(llama_clf, it.encoding, keep), atol=1e-4
        )


def test_attention_mask_ig_equals_a_hand_loop_and_is_complete(llama_clf) -> None:
    engine = Engine(llama_clf)
    it = engine.prepare(TEXTS[:1])[0]
    steps = 6
    e = get_method("attention_mask_ig", steps=steps).attribute(engine, [it])[0]
    enc = it.encoding
    words = np.asarray(enc.word_ids)
    feature = (words >= 0) & ~np.asarray(enc.special)
    t = len(enc)
    ids = torch.tensor([enc.input_ids])
    pos = torch.arange(t).unsqueeze(0)

    def f(g: torch.Tensor) -> torch.Tensor:
        # a hand-built additive mask: causal, plus log g_j on the columns of word j
        col = torch.zeros(t)
        col = col + torch.where(
            torch.tensor(feature), torch.log(g[torch.tensor(np.clip(words, 0, None))]), 0.0
        )
        low = torch.finfo(torch.float32).min
        mask = torch.where(torch.ones(t, t).tril().bool(), col.view(1, -1), low)
        b = type(llama_clf.wrapper.collate([enc]))([enc], ids, mask.view(1, 1, t, t), pos, "left")
        return LOG_ODDS.value(llama_clf.class_scores(b), torch.tensor([it.label_idx]))[0]

    d = len(enc.word_spans)
    ref = np.zeros(d)
    for a, wt in zip(*ig_alphas(steps, "gausslegendre"), strict=True):
        g = torch.full((d,), float(a), requires_grad=True)
        (grad,) = torch.autograd.grad(f(g), g)
        ref += wt * grad.numpy()
    np.testing.assert_allclose(e.word_scores, ref, rtol=1e-3, atol=1e-6)
    # completeness against the hand mask: Σφ ≈ f(all present) − f(all masked)
    many = get_method("attention_mask_ig", steps=64).attribute(engine, [it])[0]
    with torch.no_grad():
        gap = float(f(torch.ones(d)) - f(torch.full((d,), 1e-30)))
    assert sum(many.word_scores) == pytest.approx(gap, abs=0.02 * max(abs(gap), 0.05))
    assert abs(many.delta) < 0.02 * max(abs(gap), 0.05)


def test_candidate_parameters_are_validated() -> None:
    for name, bad in [
        ("contrastive_ig", {"target": "entropy"}),
        ("expected_gradients", {"baseline": "texts"}),
        ("expected_gradients", {"samples": 0}),
        ("sequential_ig", {"steps": 0}),
        ("context_cite", {"keep_prob": 1.0}),
        ("reagent", {"ratio": 0}),
        ("attention_mask_ig", {"steps": 0}),
    ]:
        with pytest.raises(UserError):
            get_method(name, **bad)
