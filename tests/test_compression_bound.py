"""An 8-bit RTN variant of a tiny classifier moves predictions and occlusion scores by no more than a
bound derived from first-order perturbation theory, not picked by hand.

Derivation. Per group, RTN-8 (asymmetric) stores ``d16 = fp16((max − min) / 255)`` and
``m16 = fp16(min)`` and reconstructs ``ŵ = m16 + q·d16`` with ``q = clamp(round((w − m16)/d16), 0, 255)``.
Without clamping ``|w − ŵ| ≤ d16/2``; clamping at the top costs at most ``(min − m16) + 255(d − d16)``
and at the bottom at most ``m16 − min``, so every weight obeys ``|w − ŵ| ≤ ε = d16/2 + |min − m16| +
255·|d − d16|`` (plus the float32 cast, ``|w|·2⁻²⁴``); the test checks this first.

For the logit margin ``f = z₁ − z₀`` along the straight path ``h(t) = f(W + t·ΔW)``:
``Δf = h(1) − h(0) = h'(0) + ∫₀¹ (h'(t) − h'(0)) dt`` with ``h'(t) = ∇f(W + tΔW)·ΔW``. When ``h'`` is
monotone on [0, 1] (checked at the midpoint) the integral is at most ``|h'(1) − h'(0)|``, so
``|Δf| ≤ B = |h'(0)| + |h'(1) − h'(0)|``, computed from two gradients. A binary softmax probability
is the logistic function of f, whose slope is at most ¼, so ``|Δp| ≤ B/4``; an occlusion score
p(x) − p(x∖j) moves by at most ``(B(x) + B(x∖j))/4``; a prediction cannot flip when ``|f| > B``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from explainlm.compression import build_variant
from explainlm.compression.quantize import _grouped
from explainlm.compression.variants import _target_weights
from explainlm.engine import Engine
from explainlm.evaluation import prepare_items
from explainlm.methods import get_method
from explainlm.models import SequenceClassifier
from explainlm.models.words import remove_words

TEXTS = ["a fine film", "dull and far too long", "great acting , weak plot", "i loved it"]


def error_bound(w: torch.Tensor, group: int = 32) -> torch.Tensor:
    """ε per weight for asymmetric 8-bit RTN (see the module docstring)."""
    x, pad = _grouped(w, group)
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    d = (hi - lo) / 255
    d16 = d.to(torch.float16).double()
    m16 = lo.to(torch.float16).double()
    eps = (d16 / 2 + (lo - m16).abs() + 255 * (d - d16).abs()).expand_as(x)
    eps = eps + x.abs() * 2.0**-24
    flat = eps.reshape(x.shape[0], -1)
    return (flat[:, :-pad] if pad else flat).reshape(w.shape)


def path_derivative(
    clf: SequenceClassifier, text: str, delta: dict[str, torch.Tensor]
) -> tuple[float, float]:
    """``(f, h'(t))``: the margin f = z₁ − z₀ of ``text`` and its derivative along ``delta``."""
    weights = _target_weights(clf.wrapper.model, "blocks")
    batch = clf.wrapper.collate(clf.encode([text], allow_empty=True))
    z = clf.class_scores(batch)[0]
    f = z[1] - z[0]
    grads = torch.autograd.grad(f, list(weights.values()))
    slope = sum(float((g.double() * delta[n]).sum()) for n, g in zip(weights, grads, strict=True))
    return float(f.detach()), slope


def test_rtn8_moves_predictions_and_occlusion_within_the_derived_bound(tiny_bert):
    ref = SequenceClassifier(tiny_bert)
    var = build_variant(ref, "rtn8:g32:asym", cache=False).task
    w_ref = {n: w.detach() for n, w in _target_weights(ref.wrapper.model, "blocks").items()}
    w_var = {n: w.detach() for n, w in _target_weights(var.wrapper.model, "blocks").items()}
    delta = {n: (w_var[n] - w_ref[n]).double() for n in w_ref}
    for n, w in w_ref.items():  # the a-priori error model holds for every weight
        assert bool((delta[n].abs() <= error_bound(w) * (1 + 1e-9)).all())
    mid = type(ref)(type(ref.wrapper)(copy.deepcopy(ref.wrapper.model), ref.wrapper.tokenizer))
    with torch.no_grad():
        for n, w in _target_weights(mid.wrapper.model, "blocks").items():
            w.add_((delta[n] / 2).to(w.dtype))

    def bound(text: str) -> float:
        f_ref, h0 = path_derivative(ref, text, delta)
        f_var, h1 = path_derivative(var, text, delta)
        _, hm = path_derivative(mid, text, delta)
        slack = 1e-6 * max(abs(h0), abs(h1))
        assert min(h0, h1) - slack <= hm <= max(h0, h1) + slack  # h' monotone on the path
        b = abs(h0) + abs(h1 - h0)
        assert abs(f_var - f_ref) <= b + 1e-6
        return b

    # predictions: same label wherever the margin exceeds the bound
    for text, p_ref, p_var in zip(TEXTS, ref.predict(TEXTS), var.predict(TEXTS), strict=True):
        b = bound(text)
        f = p_ref.scores[1] - p_ref.scores[0]
        if abs(f) > b:
            assert p_var.label == p_ref.label
        assert abs(p_var.probs["positive"] - p_ref.probs["positive"]) <= b / 4

    # occlusion of the reference's label, on both models
    labels = [p.label for p in ref.predict(TEXTS)]
    occ = get_method("occlusion")
    scores = []
    for clf in (ref, var):
        engine = Engine(clf)
        items = prepare_items(engine, TEXTS, labels)
        scores.append([e.word_scores for e in occ.attribute(engine, items, "word")])
    checked = 0
    for text, a, b in zip(TEXTS, *scores, strict=True):
        enc = ref.encode([text])[0]
        full = bound(text)
        for j in range(len(a)):
            keep = np.ones(len(a), dtype=bool)
            keep[j] = False
            reduced = remove_words(text, enc.word_spans, keep)
            limit = (full + bound(reduced)) / 4
            assert abs(a[j] - b[j]) <= limit + 1e-7  # float32 probabilities
            checked += 1
    assert checked == sum(len(t.split()) for t in TEXTS)
