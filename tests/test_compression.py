"""Model variants: spec grammar, RTN against numpy, pruning, head pruning, cache, and the derived
bound on how far an 8-bit variant's predictions and occlusion scores may move."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainlm.compression import build_variant, parse_variant
from explainlm.compression.prune import heads_to_prune
from explainlm.compression.quantize import rtn_dequantize
from explainlm.compression.variants import _target_weights, target_modules
from explainlm.errors import UserError
from explainlm.models import SequenceClassifier, ZeroShotClassifier

TEXTS = ["a fine film", "a dull , boring film", "great acting but weak plot", "i loved it"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINLM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return SequenceClassifier(tiny_bert)


@pytest.fixture(scope="module")
def zs(tiny_llama):
    return ZeroShotClassifier(tiny_llama)


# ------------------------------------------------------------------------------ spec grammar
@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("int8", "int8"),
        ("INT8:per_channel", "int8:per_channel"),
        ("rtn4", "rtn4:g32:asym"),
        ("rtn3:g128:sym", "rtn3:g128:sym"),
        ("rtn2:g0:scope=all", "rtn2:g0:asym:scope=all"),
        ("magnitude:0.50", "magnitude:0.5"),
        ("magnitude:0.3:global", "magnitude:0.3:global"),
        ("random:0.3", "random:0.3:seed=0"),
        ("heads:0.25", "heads:0.25:calib=64"),
        ("bf16", "bf16"),
    ],
)
def test_spec_canonical_form(text, canonical):
    assert str(parse_variant(text)) == canonical
    assert str(parse_variant(canonical)) == canonical


@pytest.mark.parametrize(
    "bad",
    ["rtn1", "rtn9", "rtn4:g-1", "rtn4:fast", "magnitude", "magnitude:1", "random:x", "", "q4"],
)
def test_bad_specs_are_user_errors(bad):
    with pytest.raises(UserError):
        parse_variant(bad)


# ---------------------------------------------------------------------------- RTN vs numpy
def numpy_rtn(w: np.ndarray, bits: int, group: int, symmetric: bool) -> np.ndarray:
    """An independent, loop-based implementation of the documented formulas."""
    out = np.empty_like(w, dtype=np.float64)
    rows, cols = w.shape
    g = cols if group == 0 else group
    for r in range(rows):
        for s in range(0, cols, g):
            x = w[r, s : s + g].astype(np.float64)
            if symmetric:
                qmax = 2 ** (bits - 1) - 1
                d = float(np.float16(np.abs(x).max() / qmax))
                q = np.clip(np.round(x / d), -qmax, qmax) if d > 0 else np.zeros_like(x)
                out[r, s : s + g] = q * d
            else:
                levels = 2**bits - 1
                d = float(np.float16((x.max() - x.min()) / levels))
                m = float(np.float16(x.min()))
                q = np.clip(np.round((x - m) / d), 0, levels) if d > 0 else np.zeros_like(x)
                out[r, s : s + g] = m + q * d
    return out.astype(w.dtype)


@pytest.mark.parametrize("bits", [8, 6, 4, 3, 2])
@pytest.mark.parametrize("group", [32, 7, 0])
@pytest.mark.parametrize("symmetric", [False, True])
def test_rtn_equals_numpy(bits, group, symmetric):
    rng = np.random.default_rng(bits * 100 + group)
    w = (rng.standard_normal((5, 45)) * rng.uniform(0.01, 2.0, (5, 1))).astype(np.float32)
    w[2, :10] = 0.0  # an all-zero group
    got = rtn_dequantize(torch.from_numpy(w), bits, group, symmetric).numpy()
    want = numpy_rtn(w, bits, group, symmetric)
    np.testing.assert_array_equal(got, want)
    g = w.shape[1] if group == 0 else group
    levels = {len(np.unique(got[r, s : s + g])) for r in range(5) for s in range(0, 45, g)}
    assert max(levels) <= 2**bits


# ------------------------------------------------------------------------------------ pruning
@pytest.mark.parametrize("spec", ["magnitude:0", "random:0", "magnitude:0:global", "heads:0"])
def test_pruning_zero_is_the_identity(clf, spec):
    v = build_variant(clf, spec, calibration=(TEXTS, None, None))
    ref_state, var_state = clf.wrapper.model.state_dict(), v.task.wrapper.model.state_dict()
    assert all(torch.equal(ref_state[k], var_state[k]) for k in ref_state)
    a = torch.tensor([p.scores for p in clf.predict(TEXTS)])
    b = torch.tensor([p.scores for p in v.task.predict(TEXTS)])
    assert torch.equal(a, b)


def test_magnitude_pruning_removes_the_smallest_weights(clf):
    v = build_variant(clf, "magnitude:0.3")
    ref = _target_weights(clf.wrapper.model, "blocks")
    var = dict(v.task.wrapper.model.named_parameters())
    for name, w in ref.items():
        pruned = var[name].detach() == 0
        assert int(pruned.sum()) - int((w == 0).sum()) == round(0.3 * w.numel())
        kept = w.detach().abs()[~pruned]
        assert kept.min() >= w.detach().abs()[pruned].max()
    assert v.info["sparsity"] == pytest.approx(0.3, abs=0.002)


def test_random_pruning_is_seeded(clf):
    def mask(spec):
        m = build_variant(clf, spec, cache=False).task.wrapper.model
        return torch.cat([w.detach().flatten() == 0 for w in _target_weights(m, "blocks").values()])

    a, b, c = mask("random:0.5:seed=1"), mask("random:0.5:seed=1"), mask("random:0.5:seed=2")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_the_reference_is_never_modified(clf):
    before = {k: v.clone() for k, v in clf.wrapper.model.state_dict().items()}
    for spec in ("rtn2", "magnitude:0.7", "int8", "bf16", "heads:0.5"):
        build_variant(clf, spec, calibration=(TEXTS, None, None), cache=False)
    after = clf.wrapper.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert clf.wrapper.model.dtype == torch.float32


@pytest.mark.parametrize("fixture", ["clf", "zs"])
def test_head_pruning_equals_zero_ablation(fixture, request):
    """Pruned heads give exactly the logits of zeroing those heads' outputs with hooks."""
    from explainlm.internals.hooks import architecture, hooks

    task = request.getfixturevalue(fixture)
    w = task.wrapper
    v = build_variant(task, "heads:0.5", calibration=(TEXTS, None, getattr(task, "template", None)))
    heads = v.info["heads"]
    assert len(heads) == round(0.5 * sum(len(r) for r in v.info["importance"]["grid"]))
    arch = architecture(w.model)
    d_h = arch.d_head

    def ablate(layer):
        def fn(z):
            z = z.clone()
            for i, h in heads:
                if i == layer:
                    z[..., h * d_h : (h + 1) * d_h] = 0
            return z

        return fn

    batch = w.collate(w.encode(TEXTS, chat=False))
    with torch.no_grad(), hooks(w, {f"layers.{i}.attn.z": ablate(i) for i in range(arch.n_layers)}):
        want = w.forward(batch).logits
    with torch.no_grad():
        got = v.task.wrapper.forward(batch).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_heads_to_prune_picks_least_harmful():
    grid = [[-0.3, 0.01], [0.0, -0.1]]  # label_prob deltas: negative = the head helps
    assert heads_to_prune(grid, "label_prob", 0.5) == [(0, 1), (1, 0)]
    assert heads_to_prune([[0.5, -0.1]], "lm_loss", 0.5) == [(0, 1)]


# --------------------------------------------------------------------------- other variants
def test_cache_round_trip(clf, tmp_path):
    a = build_variant(clf, "rtn3:g16")
    b = build_variant(clf, "rtn3:g16")
    assert not a.info["cached"] and b.info["cached"]
    sa, sb = a.task.wrapper.model.state_dict(), b.task.wrapper.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert str(tmp_path / "cache") in b.info["cache_path"]


def test_int8_quantizes_block_linears_only(clf):
    v = build_variant(clf, "int8")
    mods = dict(v.task.wrapper.model.named_modules())
    names = target_modules(clf.wrapper.model, "blocks")
    assert all("quantized" in type(mods[n]).__module__ for n in names)
    assert type(mods["classifier"]) is torch.nn.Linear
    assert not v.gradients
    ref = np.array([p.probs["positive"] for p in clf.predict(TEXTS)])
    got = np.array([p.probs["positive"] for p in v.task.predict(TEXTS)])
    assert np.abs(ref - got).max() < 0.05  # 8-bit weights and activations on a random model


def test_packed_sizes(clf):
    ref = build_variant(clf, "fp32").info["packed_bytes"]
    assert build_variant(clf, "bf16").info["packed_bytes"] == pytest.approx(ref / 2, rel=0.01)
    rtn = build_variant(clf, "rtn4:g32").info
    n = sum(w.numel() for w in _target_weights(clf.wrapper.model, "blocks").values())
    assert ref - rtn["packed_bytes"] == pytest.approx(n * 4 - n * (4 + 32 / 32) / 8, abs=8)
    assert rtn["bits_per_weight"] == pytest.approx(5.0)


def test_zero_shot_variant_keeps_the_task(zs):
    v = build_variant(zs, "rtn8")
    assert v.task.labels == zs.labels and v.task.template == zs.template
    assert v.task.wrapper is not zs.wrapper and v.task.wrapper.model is not zs.wrapper.model


def test_rtn4_on_a_q4_1_grid_is_the_identity():
    """Weights already on a GGUF Q4_1 grid (fp16 scale and min per 32, codes 0..15) survive RTN-4."""
    rng = np.random.default_rng(0)
    d = rng.uniform(0.001, 0.05, (6, 4, 1)).astype(np.float16).astype(np.float64)
    m = rng.uniform(-0.5, 0.0, (6, 4, 1)).astype(np.float16).astype(np.float64)
    q = rng.integers(0, 16, (6, 4, 32))
    q[..., 0], q[..., 1] = 0, 15  # every group spans the full code range
    w = (m + q * d).reshape(6, 128).astype(np.float32)
    got = rtn_dequantize(torch.from_numpy(w), 4, 32, symmetric=False).numpy()
    np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("fixture", ["clf", "zs"])
def test_gradient_methods_run_on_a_bf16_variant(fixture, request):
    """Gradients of a bf16 model come back as bf16 tensors; every gradient method still gives
    scores, and they track the fp32 model's (a bf16 rounding of the same weights)."""
    from scipy.stats import spearmanr

    from explainlm.attribution import explain

    task = request.getfixturevalue(fixture)
    v = build_variant(task, "bf16", cache=False)
    methods = ["saliency", "grad_x_input", "integrated_gradients", "smoothgrad"]
    ref = explain(TEXTS[:2], task, methods, check=False)
    got = explain(TEXTS[:2], v.task, methods, check=False)
    for r, g in zip(ref, got, strict=True):
        assert r.method == g.method and len(r.word_scores) == len(g.word_scores)
        assert np.isfinite(g.word_scores).all()
        if len(r.word_scores) > 3 and np.ptp(r.word_scores) > 1e-3:
            assert spearmanr(r.word_scores, g.word_scores)[0] > 0.5, r.method
