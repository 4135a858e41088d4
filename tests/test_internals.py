"""Hook points, cache, logit lens, patching, probes, head ablation and exports on the tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explainlm.errors import UserError
from explainlm.internals import (
    capture,
    export_tensorboard,
    head_importance,
    hooks,
    lens,
    load_cache,
    point_names,
    probe,
    probe_model,
    run_patches,
    top_examples,
    trace,
)
from explainlm.internals.hooks import architecture
from explainlm.internals.report import heads_html, lens_html, trace_figure, trace_html

TEXTS = ["A wonderful, touching film.", "Dull", "It was fine, I guess, but far too long."]


def _logits(w, texts):
    batch = w.collate(w.encode(texts, chat=False))
    with torch.no_grad():
        return w.forward(batch).logits, batch


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_llama"])
def test_hooks_do_not_change_outputs(name, request):
    w = request.getfixturevalue(name)
    before = w.model.config._attn_implementation
    plain, _ = _logits(w, TEXTS)
    cache = capture(w, TEXTS, points=["all"])
    hooked, _ = _logits(w, TEXTS)  # after capture: hooks removed, attention restored
    assert torch.allclose(plain, hooked, atol=1e-6)
    seen = []
    fns = {n: (lambda t: seen.append(1)) for n in point_names(architecture(w.model))}
    batch = w.collate(w.encode(TEXTS, chat=False))
    with torch.no_grad(), hooks(w, fns):
        during = w.forward(batch).logits
    assert len(seen) == len(fns)
    diff = (plain - during).abs()
    if w.is_decoder:  # padding rows differ between sdpa and eager (never read): ignore them
        diff = diff[batch.attention_mask.bool()]
    assert diff.max() <= 1e-5
    assert w.model.config._attn_implementation == before
    assert len(cache) == 3 and "layers.1.attn.pattern" in cache


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_llama"])
def test_cache_matches_hidden_states_and_removes_padding(name, request):
    w = request.getfixturevalue(name)
    points = ["embed", "layers.*.resid_post", "layers.*.attn.pattern", "layers.0.mlp.out"]
    cache = capture(w, TEXTS, points=points)
    batch = w.collate(w.encode(TEXTS, chat=False))
    with torch.no_grad():
        hs = w.forward(batch, output_hidden_states=True).hidden_states
    last = len(hs) - 2
    for b in range(len(TEXTS)):
        cols = batch.positions(b)
        assert torch.allclose(cache["embed"][b], hs[0][b, cols], atol=1e-5)
        assert torch.allclose(cache["layers.0.resid_post"][b], hs[1][b, cols], atol=1e-5)
        if w.is_decoder:  # HF's last hidden state of a Llama has the final norm applied
            c2 = capture(w, [TEXTS[b]], points=["final_norm"])
            assert torch.allclose(c2["final_norm"][0], hs[-1][b, cols], atol=1e-5)
        else:
            assert torch.allclose(cache[f"layers.{last}.resid_post"][b], hs[-1][b, cols], atol=1e-5)
        pat = cache["layers.1.attn.pattern"][b]
        assert pat.shape == (architecture(w.model).n_heads, len(cols), len(cols))
        assert torch.allclose(pat.sum(-1), torch.ones(pat.shape[:2]), atol=1e-5)
        single = capture(w, [TEXTS[b]], points=points)
        for p in ["embed", "layers.1.resid_post", "layers.0.mlp.out", "layers.1.attn.pattern"]:
            assert torch.allclose(single[p][0], cache[p][b], atol=1e-5), p
    pooled = cache.pooled("layers.1.resid_post", "mean")
    assert pooled.shape == (3, w.model.config.hidden_size)
    assert torch.allclose(pooled[1], cache["layers.1.resid_post"][1].mean(0))
    assert torch.equal(cache.pooled("embed", "last")[2], cache["embed"][2][-1])


def test_cache_pool_and_disk(tiny_llama, tmp_path: Path):
    full = capture(tiny_llama, TEXTS, points=["layers.*.resid_post"])
    pooled = capture(tiny_llama, TEXTS, points=["layers.*.resid_post"], pool="last")
    assert torch.allclose(
        pooled.pooled("layers.1.resid_post", "last"), full.pooled("layers.1.resid_post", "last")
    )
    disk = capture(
        tiny_llama,
        TEXTS,
        points=["layers.*.resid_post"],
        to_disk=tmp_path / "c",
        max_batch_tokens=16,
    )
    assert len(list((tmp_path / "c").glob("batch-*.safetensors"))) > 1
    again = load_cache(tmp_path / "c")
    for c in (disk, again):
        for b in range(3):
            assert torch.allclose(
                c["layers.0.resid_post"][b], full["layers.0.resid_post"][b], atol=1e-5
            )
    with pytest.raises(UserError):
        capture(tiny_llama, TEXTS, points=["layers.9.resid_post"])
    with pytest.raises(UserError):
        capture(tiny_llama, TEXTS, points=["nope"])


def test_logit_lens_final_layer_is_model_output(tiny_llama):
    prompt = "The capital of France is"
    res = lens(tiny_llama, prompt, top_k=4, target=" Paris")
    logits, _ = _logits(tiny_llama, [prompt])
    probs = torch.softmax(logits[0], -1)
    top = probs.topk(4, dim=-1)
    assert torch.allclose(torch.tensor(res.top_probs[-1]), top.values, atol=1e-5)
    assert res.top_ids[-1] == top.indices.tolist()
    tid = tiny_llama.tokenizer.encode(" Paris", add_special_tokens=False)[0]
    assert np.allclose(res.target_probs[-1], probs[:, tid].numpy(), atol=1e-5)
    rank = int((probs[-1] > probs[-1, tid]).sum()) + 1
    assert res.target_ranks[-1][-1] == rank
    doc = res.to_json()
    assert set(doc) == {"tokens", "layers", "target"}
    assert [x["layer"] for x in doc["layers"]] == [0, 1]
    assert set(doc["layers"][0]) == {"layer", "top"}
    assert set(doc["layers"][0]["top"][0][0]) == {"token", "prob"}
    assert len(doc["layers"][0]["top"]) == len(doc["tokens"])
    assert set(lens(tiny_llama, prompt, top_k=2).to_json()) == {"tokens", "layers"}
    html = lens_html(lens(tiny_llama, "<script>alert(1)</script>", top_k=2))
    assert "<script>alert" not in html
    with pytest.raises(UserError):
        lens(tiny_llama, prompt, layers=[5])


def test_lens_needs_causal_lm(tiny_bert):
    with pytest.raises(UserError):
        lens(tiny_bert, "hello")


def test_patching_full_and_empty(tiny_llama):
    w = tiny_llama
    clean, corrupt = "The cat sat on the", "The dog sat on the"
    ids_c = torch.tensor([w.encode([clean], chat=False)[0].input_ids])
    ids_x = torch.tensor([w.encode([corrupt], chat=False)[0].input_ids])
    n = ids_c.shape[1]
    acts = {}
    with (
        torch.no_grad(),
        hooks(w, {"layers.0.resid_pre": lambda t: acts.__setitem__("layers.0.resid_pre", t[0])}),
    ):
        clean_logits = w.forward(input_ids=ids_c).logits

    def metric(logits):
        return torch.softmax(logits[:, -1], -1)[:, 42]

    p_clean = float(metric(clean_logits)[0])
    vals = run_patches(
        w, {"input_ids": ids_x}, acts, [{}, {"layers.0.resid_pre": list(range(n))}], metric
    )
    with torch.no_grad():
        p_corrupt = float(metric(w.forward(input_ids=ids_x).logits)[0])
    assert vals[0] == pytest.approx(p_corrupt, abs=1e-7)
    assert vals[1] == pytest.approx(p_clean, abs=1e-7)


@pytest.mark.parametrize("component", ["resid", "attn", "mlp"])
def test_trace_grid_batched_equals_single(tiny_llama, component):
    w = tiny_llama
    res = trace(w, "The cat sat on the", target=" mat", subject="The cat", component=component)
    n_l, n = len(res.grid), len(res.tokens)
    assert (n_l, n) == (2, len(w.encode(["The cat sat on the"], chat=False)[0]))
    if component == "resid":
        assert res.grid[-1][-1] == pytest.approx(1.0, abs=1e-5)  # last layer, last token = clean
        assert all(abs(v) < 1e-6 for v in res.grid[-1][:-1])  # a decoder's last layer elsewhere: 0
    one = trace(
        w,
        "The cat sat on the",
        target=" mat",
        subject="The cat",
        component=component,
        max_batch_tokens=n,  # one row per forward pass
    )
    assert np.allclose(res.grid, one.grid, atol=1e-5)
    tok = trace(
        w, "The cat sat on the", target=" mat", corrupt="The dog sat on the", component=component
    )
    assert tok.corrupted_positions == [1]
    part = trace(
        w,
        "The cat sat on the",
        target=" mat",
        subject="The cat",
        component=component,
        positions=[0, -1],
    )
    assert part.positions == [0, n - 1]
    assert np.allclose([r[0] for r in part.grid], [r[0] for r in res.grid], atol=1e-5)
    assert np.allclose([r[1] for r in part.grid], [r[-1] for r in res.grid], atol=1e-5)
    assert len(trace_html(tok)) > 100
    diff = trace(
        w,
        "The cat sat on the",
        target=" mat",
        corrupt="The dog sat on the",
        metric="logit_diff",
        foil=" hat",
    )
    assert diff.grid[-1][-1] == pytest.approx(1.0, abs=1e-5)


def test_trace_errors_and_figure(tiny_llama, tiny_bert, tmp_path: Path):
    with pytest.raises(UserError):
        trace(tiny_llama, "The cat sat", target=" mat", corrupt="The hippopotamus sat")
    with pytest.raises(UserError):
        trace(tiny_llama, "The cat sat", target=" mat", subject="dog")
    with pytest.raises(UserError):
        trace(tiny_bert, "The cat sat", target=" mat", subject="cat")
    res = trace(tiny_llama, "The cat sat", target=" mat", subject="cat")
    assert trace_figure(res, tmp_path / "t.png").stat().st_size > 1000


def test_probe_beats_control():
    rng = np.random.default_rng(0)
    y = np.array(["neg", "pos"] * 50)
    x = rng.normal(size=(2, 100, 6))
    x[1, :, 0] += 2.5 * (y == "pos")
    r = probe(x, y, layer_names=["noise", "signal"], folds=5, directions=True)
    assert r.accuracy[1] > 0.85 and r.accuracy[1] > r.control[1] + 0.2
    assert r.ci_low[1] <= r.accuracy[1] <= r.ci_high[1]
    assert r.selectivity[1] == pytest.approx(r.accuracy[1] - r.control[1])
    assert abs(r.accuracy[0] - 0.5) < 0.2
    assert r.directions is not None and abs(r.directions[1][0]) > abs(r.directions[1][1])
    assert r.to_json()["classes"] == ["neg", "pos"]
    with pytest.raises(UserError):
        probe(x, ["a"] * 100)


def test_probe_model_and_tensorboard(tiny_bert, tmp_path: Path):
    texts = [f"good film number {i}" if i % 2 else f"bad film number {i}" for i in range(20)]
    labels = ["pos" if i % 2 else "neg" for i in range(20)]
    res, feats = probe_model(tiny_bert, texts, labels, folds=4)
    assert res.layers == ["embed", "layers.0.resid_post", "layers.1.resid_post"]
    assert feats["embed"].shape == (20, 32)
    out = export_tensorboard(tmp_path / "tb", feats, labels=labels, texts=texts, probe=res)
    assert (out / "projector_config.pbtxt").exists()
    meta = next(out.rglob("metadata.tsv")).read_text().splitlines()
    assert meta[0] == "label\ttext" and len(meta) == 21
    assert list(out.glob("events.out.tfevents.*"))


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_llama"])
@pytest.mark.parametrize("ablation", ["zero", "mean"])
def test_head_importance(name, ablation, request):
    w = request.getfixturevalue(name)
    res = head_importance(w, TEXTS, ablation=ablation, max_batch_tokens=64)
    arch = architecture(w.model)
    assert len(res.grid) == arch.n_layers and len(res.grid[0]) == arch.n_heads
    # the intact row with the hooks in place equals the plain model
    logits, batch = _logits(w, TEXTS)
    if w.kind == "sequence_classifier":
        base = torch.softmax(logits, -1).max(-1).values.mean()
    else:
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), batch.input_ids[:, 1:], reduction="none"
        )
        m = (batch.attention_mask[:, 1:] * batch.attention_mask[:, :-1]).float()
        base = ((nll * m).sum(1) / m.sum(1)).mean()
    assert res.base == pytest.approx(float(base), abs=1e-5)
    assert any(abs(v) > 1e-6 for row in res.grid for v in row)
    assert "<table" in heads_html(res)
    # ablating every head of layer 0 changes the output; ablating none changes nothing
    n_h, d_h = arch.n_heads, arch.d_head
    with torch.no_grad(), hooks(w, {"layers.0.attn.z": lambda z: z * 0}):
        changed = w.forward(batch).logits
    with torch.no_grad(), hooks(w, {"layers.0.attn.z": lambda z: z * torch.ones(n_h * d_h)}):
        same = w.forward(batch).logits
    assert (changed - logits).abs().max() > 1e-4
    assert torch.allclose(same, logits, atol=1e-6)


def test_top_examples(tiny_llama):
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    top = top_examples(tiny_llama, texts, "layers.1.mlp.out", neuron=3, k=2)
    cache = capture(tiny_llama, texts, points=["layers.1.mlp.out"])
    best = [float(t[:, 3].max()) for t in cache["layers.1.mlp.out"]]
    order = sorted(range(3), key=lambda i: -best[i])[:2]
    assert [t["index"] for t in top] == order
    assert top[0]["activation"] == pytest.approx(best[order[0]], abs=1e-5)
    vec = torch.zeros(32)
    vec[3] = 1.0
    assert [
        t["index"] for t in top_examples(tiny_llama, texts, "layers.1.mlp.out", direction=vec, k=2)
    ] == order
    with pytest.raises(UserError):
        top_examples(tiny_llama, texts, "layers.1.mlp.out")
