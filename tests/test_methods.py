"""Explanation methods against references: autograd, Captum, SHAP, LIME, brute force, NumPy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from explainlm.attribution import explain
from explainlm.engine import Engine
from explainlm.errors import UserError
from explainlm.methods import METHODS, get_method
from explainlm.methods.gradient import baseline_embeddings
from explainlm.models import ZeroShotClassifier, make_task
from explainlm.targets import ClassTarget

# single-space separated words: removing word j is exactly " ".join(the others)
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


def target_fn(clf, item, target: ClassTarget):
    """f(embeddings) → target value for one item (an independent closure over the model)."""
    batch = clf.wrapper.collate([item.encoding])

    def f(emb: torch.Tensor) -> torch.Tensor:
        n = emb.shape[0]
        rep = type(batch)(
            batch.encodings * n,
            batch.input_ids.expand(n, -1),
            batch.attention_mask.expand(n, -1),
            batch.position_ids.expand(n, -1),
            batch.padding_side,
        )
        scores = clf.class_scores(rep, inputs_embeds=emb)
        idx = torch.full((n,), item.label_idx)
        return target.value(scores, idx, None)

    return f, clf.wrapper.embed(batch.input_ids).detach()


def test_saliency_and_grad_x_input_equal_autograd(clf) -> None:
    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    sal = get_method("saliency").attribute(engine, items, "token")
    gxi = get_method("grad_x_input").attribute(engine, items, "token")
    for it, s, g in zip(items, sal, gxi, strict=True):
        f, emb = target_fn(clf, it, engine.target)
        emb.requires_grad_(True)
        (grad,) = torch.autograd.grad(f(emb).sum(), emb)
        np.testing.assert_allclose(
            s.token_scores, grad[0].norm(dim=-1).numpy(), rtol=1e-4, atol=1e-7
        )
        np.testing.assert_allclose(
            g.token_scores, (grad[0] * emb[0]).sum(-1).detach().numpy(), rtol=1e-4, atol=1e-7
        )
        # words are sums of their tokens; special tokens are left out
        for j in range(len(g.words)):
            tok = [k for k, w in enumerate(g.word_ids) if w == j and not g.token_special[k]]
            assert g.word_scores[j] == pytest.approx(sum(g.token_scores[k] for k in tok), abs=1e-9)


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid", "riemann_middle"])
def test_integrated_gradients_equals_captum(clf, rule: str) -> None:
    from captum.attr import IntegratedGradients as CaptumIG

    engine = Engine(clf)
    items = engine.prepare(TEXTS)
    ours = get_method("integrated_gradients", steps=24, method=rule).attribute(
        engine, items, "token"
    )
    for it, e in zip(items, ours, strict=True):
        f, emb = target_fn(clf, it, engine.target)
        base = baseline_embeddings(engine, emb[0], it, "pad").unsqueeze(0)
        ref, delta = CaptumIG(f).attribute(
            emb, baselines=base, n_steps=24, method=rule, return_convergence_delta=True
        )
        ref = ref[0].sum(-1).detach().numpy()
        if rule == "riemann_trapezoid":
            # Captum spaces the trapezoid points by 1/n (weights sum to (n−1)/n); we use the
            # trapezoid rule's own 1/(n−1) spacing, so the two differ by exactly n/(n−1).
            ref = ref * 24 / 23
        else:
            assert e.delta == pytest.approx(float(delta), abs=1e-5)
        np.testing.assert_allclose(e.token_scores, ref, rtol=1e-3, atol=1e-6)


def test_integrated_gradients_completeness(clf) -> None:
    res = explain(
        TEXTS, clf, ["integrated_gradients"], method_params={"integrated_gradients": {"steps": 64}}
    )
    for e in res:
        spread = max(abs(s) for s in e.token_scores)
        assert abs(e.delta) < 0.02 * max(spread, 1e-3) * len(e.token_scores)


def test_occlusion_equals_loop_over_predict(clf) -> None:
    res = explain(TEXTS, clf, ["occlusion"])
    for text, e in zip(TEXTS, res, strict=True):
        words = text.split(" ")
        assert e.words == words
        p_full = clf.predict([text])[0].probs[e.label]
        reduced = [" ".join(words[:j] + words[j + 1 :]) for j in range(len(words))]
        expected = [p_full - p.probs[e.label] for p in clf.predict(reduced)]
        np.testing.assert_allclose(e.word_scores, expected, atol=1e-5)


def brute_force_shapley(clf, text: str, label: str) -> np.ndarray:
    words = text.split(" ")
    d = len(words)

    def f(subset: tuple[int, ...]) -> float:
        kept = " ".join(words[i] for i in sorted(subset))
        enc = clf.encode([kept], allow_empty=True)
        return float(torch.softmax(clf.scores(enc)[0], -1)[clf.label_index(label)])

    cache = {s: f(s) for k in range(d + 1) for s in itertools.combinations(range(d), k)}
    phi = np.zeros(d)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for k in range(d):
            for s in itertools.combinations(others, k):
                w = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
                phi[i] += w * (cache[tuple(sorted(s + (i,)))] - cache[s])
    return phi


def test_exact_kernel_shap_equals_brute_force_and_is_efficient(clf) -> None:
    res = explain(TEXTS, clf, ["kernel_shap"])
    for text, e in zip(TEXTS, res, strict=True):
        phi = brute_force_shapley(clf, text, e.label)
        np.testing.assert_allclose(e.word_scores, phi, atol=1e-5)
        empty = clf.encode([""], allow_empty=True)
        f_empty = float(torch.softmax(clf.scores(empty)[0], -1)[clf.label_index(e.label)])
        assert sum(e.word_scores) == pytest.approx(e.target_value - f_empty, abs=1e-5)


def test_kernel_shap_equals_shap_package(bert_clf) -> None:
    shap = pytest.importorskip("shap")
    text = TEXTS[2]
    e = explain([text], bert_clf, ["kernel_shap"])[0]
    words = text.split(" ")
    li = bert_clf.label_index(e.label)

    def f(masks: np.ndarray) -> np.ndarray:
        kept = [" ".join(w for w, k in zip(words, m, strict=True) if k) for m in masks]
        return torch.softmax(bert_clf.scores(bert_clf.encode(kept, allow_empty=True)), -1)[
            :, li
        ].numpy()

    explainer = shap.KernelExplainer(f, np.zeros((1, len(words))))
    ref = explainer.shap_values(np.ones((1, len(words))), nsamples=2 ** len(words), silent=True)
    np.testing.assert_allclose(e.word_scores, np.asarray(ref).reshape(-1), atol=1e-4)


def test_sampled_kernel_shap_approximates_exact(bert_clf) -> None:
    text = "the film was a long , slow and thoroughly tedious mess"
    exact = explain(
        [text], bert_clf, ["kernel_shap"], method_params={"kernel_shap": {"exact_max_features": 12}}
    )[0]
    kernel = explain(
        [text],
        bert_clf,
        ["kernel_shap"],
        method_params={
            "kernel_shap": {"exact_max_features": 0, "n_samples": 3000, "sampling": "kernel"}
        },
    )[0]
    assert np.corrcoef(exact.word_scores, kernel.word_scores)[0, 1] > 0.95
    # (efficiency holds by construction of the constrained regression, so it is not tested here)
    err = np.linalg.norm(np.subtract(kernel.word_scores, exact.word_scores))
    assert err < 0.3 * np.linalg.norm(exact.word_scores)  # measured: 0.19
    assert kernel.diagnostics["n_coalitions"] == 3000
    # leverage sampling draws without replacement: a budget over the 2^11 coalitions is exact
    full = explain(
        [text],
        bert_clf,
        ["kernel_shap"],
        method_params={"kernel_shap": {"exact_max_features": 0, "n_samples": 3000}},
    )[0]
    np.testing.assert_allclose(full.word_scores, exact.word_scores, atol=1e-9)
    assert full.diagnostics["n_coalitions"] == 2**11 and not full.diagnostics["exact"]
    # and at a tenth of that it is already closer than the kernel sampling's 3,000 draws
    lev = explain(
        [text],
        bert_clf,
        ["kernel_shap"],
        method_params={"kernel_shap": {"exact_max_features": 0, "n_samples": 300}},
    )[0]
    assert np.linalg.norm(np.subtract(lev.word_scores, exact.word_scores)) < err


def test_lime_agrees_with_lime_package(bert_clf) -> None:
    lime_text = pytest.importorskip("lime.lime_text")
    text = "a wonderful , touching film that is never dull"
    e = explain([text], bert_clf, ["lime"], method_params={"lime": {"n_samples": 3000}})[0]
    li = bert_clf.label_index(e.label)

    def proba(texts: list[str]) -> np.ndarray:
        return torch.softmax(bert_clf.scores(bert_clf.encode(texts, allow_empty=True)), -1).numpy()

    explainer = lime_text.LimeTextExplainer(
        split_expression=" ", bow=False, mask_string="", random_state=0, feature_selection="none"
    )
    exp = explainer.explain_instance(text, proba, labels=(li,), num_features=20, num_samples=3000)
    ref = np.zeros(len(e.words))
    for pos, w in exp.as_map()[li]:
        ref[pos] = w
    assert np.corrcoef(e.word_scores, ref)[0, 1] > 0.9


def test_seeded_methods_are_reproducible(bert_clf) -> None:
    for m, params in [
        ("lime", {"n_samples": 200}),
        ("kernel_shap", {"exact_max_features": 0, "n_samples": 200, "sampling": "kernel"}),
        ("kernel_shap", {"exact_max_features": 0, "n_samples": 16}),  # leverage, under 2^d
        ("smoothgrad", {"samples": 5}),
        ("random", {}),
    ]:
        a = explain(TEXTS, bert_clf, [m], method_params={m: params})
        b = explain(TEXTS, bert_clf, [m], method_params={m: params})
        c = explain(TEXTS, bert_clf, [m], method_params={m: {**params, "seed": 7}})
        assert [e.word_scores for e in a] == [e.word_scores for e in b]
        assert [e.word_scores for e in a] != [e.word_scores for e in c]


def test_smoothgrad_without_noise_is_saliency(bert_clf) -> None:
    sg = explain(
        TEXTS, bert_clf, ["smoothgrad"], method_params={"smoothgrad": {"noise": 0.0, "samples": 3}}
    )
    sal = explain(TEXTS, bert_clf, ["saliency"])
    for a, b in zip(sg, sal, strict=True):
        np.testing.assert_allclose(a.token_scores, b.token_scores, rtol=1e-5)


def numpy_rollout(att: np.ndarray) -> np.ndarray:
    result = np.eye(att.shape[-1])
    for layer in att:
        a = layer.mean(0) * 0.5 + np.eye(att.shape[-1]) * 0.5
        a = a / a.sum(-1, keepdims=True)
        result = a @ result
    return result


def test_attention_and_rollout_equal_numpy_reference(clf) -> None:
    w = clf.wrapper
    res = explain(TEXTS, clf, ["attention", "attention_rollout"], granularity="token")
    for k, text in enumerate(TEXTS):
        enc = clf.encode([text])[0]
        ids = torch.tensor([enc.input_ids])
        w.model.set_attn_implementation("eager")
        with torch.no_grad():
            att = np.stack(
                [a[0].numpy() for a in w.model(input_ids=ids, output_attentions=True).attentions]
            )
        w.model.set_attn_implementation("sdpa")
        q = len(enc) - 1 if w.is_decoder else 0
        np.testing.assert_allclose(
            res[2 * k].token_scores, att[-1].mean(0)[q], rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            res[2 * k + 1].token_scores, numpy_rollout(att)[q], rtol=1e-4, atol=1e-6
        )


def test_contrast_is_difference_of_logit_attributions(clf) -> None:
    kw = {"granularity": "token"}
    con = explain(TEXTS, clf, ["grad_x_input"], contrast="positive:negative", **kw)
    pos = explain(TEXTS, clf, ["grad_x_input"], target="logit:positive", **kw)
    neg = explain(TEXTS, clf, ["grad_x_input"], target="logit:negative", **kw)
    for c, p, n in zip(con, pos, neg, strict=True):
        assert c.target == "contrast:positive:negative"
        np.testing.assert_allclose(
            c.token_scores, np.subtract(p.token_scores, n.token_scores), rtol=1e-4, atol=1e-6
        )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_on_every_classifier_and_granularity(clf, method: str) -> None:
    params = {
        "lime": {"n_samples": 64},
        "smoothgrad": {"samples": 3},
        "integrated_gradients": {"steps": 8},
    }
    for gran in ("word", "token"):
        res = explain(
            TEXTS[:2],
            clf,
            [method],
            granularity=gran,
            method_params={method: params.get(method, {})},
        )
        for text, e in zip(TEXTS[:2], res, strict=True):
            assert e.text == text and e.method == method and e.granularity == gran
            assert len(e.units) == len(e.scores) and all(np.isfinite(e.scores))
            if gran == "token":
                assert e.units == e.tokens and len(e.tokens) == len(clf.encode([text])[0])
            else:
                assert e.units == text.split(" ")


def test_batched_explanations_equal_single(clf) -> None:
    methods = ["integrated_gradients", "occlusion"]
    params = {"integrated_gradients": {"steps": 8}}
    together = explain(TEXTS, clf, methods, method_params=params)
    for k, text in enumerate(TEXTS):
        alone = explain([text], clf, methods, method_params=params)
        for m in range(2):
            np.testing.assert_allclose(
                together[2 * k + m].word_scores, alone[m].word_scores, rtol=1e-4, atol=1e-6
            )


def test_small_token_budget_gives_same_results(bert_clf) -> None:
    a = explain(TEXTS, bert_clf, ["integrated_gradients", "occlusion"], max_batch_tokens=16)
    b = explain(TEXTS, bert_clf, ["integrated_gradients", "occlusion"], max_batch_tokens=100_000)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.word_scores, y.word_scores, rtol=1e-4, atol=1e-6)


def test_engine_batches_many_texts_into_few_passes(bert_clf) -> None:
    engine = Engine(bert_clf, max_batch_tokens=100_000)
    items = engine.prepare(TEXTS * 4)
    engine.passes = 0
    get_method("integrated_gradients", steps=10).attribute(engine, items)
    assert engine.passes == 1  # 12 texts × 12 rows in one pass
    engine.passes = 0
    get_method("occlusion").attribute(engine, items)
    assert engine.passes == 1


def test_mask_replacement_equals_loop_over_masked_inputs(bert_clf) -> None:
    """replace=mask: each word's tokens become [MASK] in place (the length is kept)."""
    tok = bert_clf.wrapper.tokenizer
    e = explain(
        [TEXTS[0]], bert_clf, ["occlusion"], method_params={"occlusion": {"replace": "mask"}}
    )[0]
    li = bert_clf.label_index(e.label)
    words = TEXTS[0].split(" ")
    ids = [tok(w, add_special_tokens=False)["input_ids"] for w in words]

    def p(pieces: list[list[int]]) -> float:
        seq = [tok.cls_token_id] + [t for piece in pieces for t in piece] + [tok.sep_token_id]
        with torch.no_grad():
            logits = bert_clf.wrapper.model(input_ids=torch.tensor([seq])).logits[0]
        return float(torch.softmax(logits, -1)[li])

    full = p(ids)
    expected = [
        full - p([[tok.mask_token_id] * len(x) if k == j else x for k, x in enumerate(ids)])
        for j in range(len(words))
    ]
    np.testing.assert_allclose(e.word_scores, expected, atol=1e-5)


def test_bad_method_inputs(bert_clf) -> None:
    with pytest.raises(UserError, match="unknown method"):
        get_method("gradcam")
    with pytest.raises(UserError, match="unknown parameter"):
        get_method("occlusion", window=3)
    with pytest.raises(UserError, match="baseline"):
        get_method("integrated_gradients", baseline="noise")
    with pytest.raises(UserError, match="granularity"):
        explain(TEXTS[:1], bert_clf, ["occlusion"], granularity="paragraph")
    with pytest.raises(UserError, match="unknown label"):
        explain(TEXTS[:1], bert_clf, ["occlusion"], target="prob:neutral")
    with pytest.raises(UserError, match="empty"):
        explain([" "], bert_clf, ["occlusion"])


def test_kernel_regression_on_all_coalitions_is_exact() -> None:
    from explainlm.methods.perturbation import kernel_shap_regression, shapley_exact

    rng = np.random.default_rng(0)
    d = 5
    masks = np.array(list(itertools.product([False, True], repeat=d)))
    y = rng.standard_normal(len(masks))
    y[0], y[-1] = 0.3, 1.7  # f(∅), f(all)
    exact = shapley_exact({tuple(m): float(v) for m, v in zip(masks, y, strict=True)}, d)
    reg = kernel_shap_regression(masks, y, 0.3, 1.7, sampled=False)
    np.testing.assert_allclose(reg, exact, atol=1e-10)


def test_mixed_precision_stays_close_to_float32(bert_clf) -> None:
    full = explain(TEXTS, bert_clf, ["grad_x_input", "occlusion"])
    mixed = explain(TEXTS, bert_clf, ["grad_x_input", "occlusion"], mixed_precision=True)
    for a, b in zip(full, mixed, strict=True):
        assert np.corrcoef(a.word_scores, b.word_scores)[0, 1] > 0.9
