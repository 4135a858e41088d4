"""Per-token attribution of generated text, against naive loops, Captum and linearity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explainlm.cli.app import main
from explainlm.errors import UserError
from explainlm.generation import GenerationSet, explain_generation
from explainlm.models import Generator

PROMPT = "a wonderful , touching film"  # single spaces: removing a word is " ".join(the others)


@pytest.fixture(scope="module")
def gen(tiny_llama) -> Generator:
    return Generator(tiny_llama, chat=False)


def naive_logprobs(w, prompt_ids: list[int], cont: list[int]) -> np.ndarray:
    ids = torch.tensor([prompt_ids + cont])
    with torch.no_grad():
        logp = torch.log_softmax(w.model(input_ids=ids).logits[0].float(), -1)
    n = len(prompt_ids)
    return np.array([float(logp[n - 1 + k, t]) for k, t in enumerate(cont)])


def test_occlusion_equals_naive_loop(gen) -> None:
    w = gen.wrapper
    a = explain_generation([PROMPT], gen, ["occlusion"], max_new_tokens=4)[0]
    g = gen.generate([PROMPT], max_new_tokens=4)[0]
    words = PROMPT.split(" ")
    assert a.source_units == words + g.tokens[:3] and a.target_units == g.tokens
    assert a.target_logprobs == pytest.approx(g.logprobs, abs=1e-4)
    tok = w.tokenizer
    full = naive_logprobs(w, tok(PROMPT)["input_ids"], g.token_ids)
    for j in range(len(words)):
        reduced = " ".join(words[:j] + words[j + 1 :])
        lp = naive_logprobs(w, tok(reduced)["input_ids"], g.token_ids)
        np.testing.assert_allclose([r[j] for r in a.matrix], full - lp, atol=1e-4)
    for k in range(3):  # a generated token removed from the context of the later ones
        cont = g.token_ids[:k] + g.token_ids[k + 1 :]
        lp = naive_logprobs(w, tok(PROMPT)["input_ids"], cont)
        for i in range(4):
            cell = a.matrix[i][len(words) + k]
            if i <= k:
                assert cell is None
            else:
                assert cell == pytest.approx(full[i] - lp[i - 1], abs=1e-4)


def test_occlusion_of_a_one_word_prompt_scores_after_the_start_token(gen) -> None:
    """Removing the only word leaves no context; the token is then scored after BOS (or EOS)."""
    w = gen.wrapper
    tok = w.tokenizer
    ids = tok("wonderful", add_special_tokens=False)["input_ids"]
    cont = [11, 22, 33]
    a = explain_generation(["wonderful"], gen, ["occlusion"], target_texts=[cont])[0]
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    prompt = tok("wonderful")["input_ids"]
    expected = naive_logprobs(w, prompt, cont) - naive_logprobs(w, [start], cont)
    np.testing.assert_allclose([r[0] for r in a.matrix], expected, atol=1e-4)
    assert prompt == ids  # no BOS is added: removing the word leaves an empty context


def test_occlusion_equals_captum_feature_ablation(gen) -> None:
    from captum.attr import FeatureAblation, LLMAttribution, TextTokenInput

    w = gen.wrapper
    target = " lovely and kind"
    a = explain_generation(
        [PROMPT],
        gen,
        ["occlusion"],
        target_texts=[target],
        granularity="token",
        method_params={"occlusion": {"replace": "pad"}},
    )[0]
    llm = LLMAttribution(FeatureAblation(w.model), w.tokenizer)
    inp = TextTokenInput(PROMPT, w.tokenizer, baselines=w.pad_token_id)
    ids = torch.tensor(w.tokenizer(target, add_special_tokens=False)["input_ids"])
    # use_cached_outputs=False: Captum's KV-cached decoding path gives different later-token
    # log-probs with transformers 5 (row 0 agrees); full forwards are the plain definition
    ref = llm.attribute(inp, target=ids, use_cached_outputs=False).token_attr.detach().numpy()
    n_prompt = len(w.tokenizer(PROMPT)["input_ids"])
    ours = np.array([[v for v in row[:n_prompt]] for row in a.matrix], dtype=float)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_integrated_gradients_per_token_equals_captum(gen) -> None:
    from captum.attr import IntegratedGradients

    w = gen.wrapper
    a = explain_generation(
        [PROMPT],
        gen,
        ["integrated_gradients"],
        max_new_tokens=3,
        granularity="token",
        method_params={"integrated_gradients": {"steps": 16}},
    )[0]
    g = gen.generate([PROMPT], max_new_tokens=3)[0]
    prompt_ids = w.tokenizer(PROMPT)["input_ids"]
    for i, t in enumerate(g.token_ids):
        ids = torch.tensor([prompt_ids + g.token_ids[:i]])
        emb = w.embed(ids).detach()
        base = w.embed(torch.full_like(ids, w.pad_token_id)).detach()

        def f(e: torch.Tensor, t: int = t) -> torch.Tensor:
            return torch.log_softmax(w.model(inputs_embeds=e).logits[:, -1].float(), -1)[:, t]

        ref, delta = IntegratedGradients(f).attribute(
            emb, baselines=base, n_steps=16, return_convergence_delta=True
        )
        row = np.array([v for v in a.matrix[i] if v is not None])
        np.testing.assert_allclose(row, ref[0].sum(-1).detach().numpy(), rtol=1e-3, atol=1e-5)
        # completeness per generated token: the attributions add up to f(x) − f(x′) − δ
        assert a.delta[i] == pytest.approx(float(delta), abs=1e-4)


def test_contrast_is_difference_of_single_targets(gen) -> None:
    for method in ("occlusion", "grad_x_input"):
        kw = {"granularity": "token"}
        con = explain_generation(
            [PROMPT], gen, [method], target_texts=[" good"], foil=" bad", **kw
        )[0]
        pos = explain_generation([PROMPT], gen, [method], target_texts=[" good"], **kw)[0]
        neg = explain_generation([PROMPT], gen, [method], target_texts=[" bad"], **kw)[0]
        assert con.target == "contrast: bad"
        np.testing.assert_allclose(
            np.array(con.matrix, dtype=float),
            np.subtract(pos.matrix, neg.matrix, dtype=float),
            atol=1e-5,
        )


def test_sequence_target_is_sum_of_token_targets(gen) -> None:
    for method in ("occlusion", "grad_x_input"):
        seq = explain_generation(
            [PROMPT], gen, [method], max_new_tokens=3, target="sequence_logprob"
        )[0]
        tok = explain_generation([PROMPT], gen, [method], max_new_tokens=3)[0]
        assert len(seq.matrix) == 1 and seq.target_logprobs[0] == pytest.approx(
            sum(tok.target_logprobs)
        )
        n_words = len(PROMPT.split(" "))
        summed = np.array(tok.matrix, dtype=float)[:, :n_words].sum(0)
        np.testing.assert_allclose(
            np.array(seq.matrix[0][:n_words], dtype=float), summed, atol=1e-4
        )
    with pytest.raises(UserError, match="whole-sequence"):
        explain_generation([PROMPT], gen, ["saliency"], target="sequence_logprob")


def test_teacher_forcing_equals_generation(gen) -> None:
    g = gen.generate([PROMPT], max_new_tokens=5)[0]
    forced = explain_generation([PROMPT], gen, ["occlusion"], target_texts=[g.token_ids])[0]
    generated = explain_generation([PROMPT], gen, ["occlusion"], max_new_tokens=5)[0]
    assert forced.target_units == generated.target_units == g.tokens
    assert forced.target_logprobs == pytest.approx(generated.target_logprobs, abs=1e-4)
    np.testing.assert_allclose(
        np.array(forced.matrix, dtype=float), np.array(generated.matrix, dtype=float), atol=1e-4
    )


@pytest.mark.parametrize(
    "method",
    ["saliency", "smoothgrad", "attention", "attention_rollout", "lime", "kernel_shap", "random"],
)
def test_every_method_gives_a_causal_matrix(gen, method: str) -> None:
    params = {"lime": {"n_samples": 40}, "smoothgrad": {"samples": 2}}
    a = explain_generation(
        [PROMPT, "dull"],
        gen,
        [method],
        max_new_tokens=3,
        method_params={method: params.get(method, {})},
    )
    for att in a:
        n_prompt = len(att.prompt.split(" "))
        assert len(att.matrix) == len(att.target_units) == 3
        for i, row in enumerate(att.matrix):
            assert len(row) == len(att.source_units)
            assert all(v is not None and np.isfinite(v) for v in row[:n_prompt])
            assert all(v is None for v in row[n_prompt + i :])  # nothing from the future


def test_chat_template_tokens_are_shown_not_features(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=True)
    tok = explain_generation(
        ["good film"], gen, ["occlusion"], max_new_tokens=2, granularity="token"
    )[0]
    assert "template" in tok.source_kinds and tok.source_kinds.count("prompt") == 2
    for row in tok.matrix:
        for v, kind in zip(row, tok.source_kinds, strict=True):
            if kind == "template":
                assert v is None
    word = explain_generation(["good film"], gen, ["grad_x_input"], max_new_tokens=2)[0]
    assert word.source_units[:2] == ["good", "film"] and "template" not in word.source_kinds


def test_long_prompt_in_small_chunks(gen) -> None:
    prompt = " ".join(["word"] * 220)
    small = explain_generation(
        [prompt],
        gen,
        ["integrated_gradients"],
        max_new_tokens=2,
        granularity="token",
        method_params={"integrated_gradients": {"steps": 6}},
        max_batch_tokens=600,
    )[0]
    big = explain_generation(
        [prompt],
        gen,
        ["integrated_gradients"],
        max_new_tokens=2,
        granularity="token",
        method_params={"integrated_gradients": {"steps": 6}},
        max_batch_tokens=100_000,
    )[0]
    np.testing.assert_allclose(
        np.array(small.matrix, dtype=float), np.array(big.matrix, dtype=float), rtol=1e-4, atol=1e-6
    )


def test_save_load_and_cli_json(gen, tiny_llama_dir: Path, tmp_path: Path, capsys) -> None:
    res = explain_generation([PROMPT], gen, ["occlusion", "grad_x_input"], max_new_tokens=2)
    res.save(tmp_path / "g.json")
    back = GenerationSet.load(tmp_path / "g.json")
    assert [a.to_dict() for a in back] == [a.to_dict() for a in res]
    res.save(tmp_path / "g.html")
    html = (tmp_path / "g.html").read_text()
    assert "top sources" in html and "wonderful" in html
    code = main(
        [
            "generate",
            "<b>x</b> " + PROMPT,
            "--model",
            str(tiny_llama_dir),
            "--method",
            "occlusion",
            "--max-new-tokens",
            "2",
            "--json",
            "--html",
            str(tmp_path / "c.html"),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"run_id", "model", "prompt", "attributions"}
    att = doc["attributions"][0]
    assert {"method", "target", "source_units", "target_units", "target_logprobs", "matrix"} <= set(
        att
    )
    assert len(att["matrix"]) == len(att["target_units"]) == len(att["target_logprobs"]) == 2
    assert "<b>x</b>" not in (tmp_path / "c.html").read_text()
    assert main(["generate", "  ", "--model", str(tiny_llama_dir)]) == 2


def test_shared_prefix_kv_cache_gives_the_same_logprobs(tiny_llama) -> None:
    from explainlm.engine import Engine
    from explainlm.engine.continuation import shared_prefix_length
    from explainlm.generation import NextTokenScorer
    from explainlm.methods.perturbation import mask_variants

    gen = Generator(tiny_llama, chat=True)
    prompt = " ".join(f"w{k}" for k in range(60)) + " and a wonderful film"
    enc = gen.encode([prompt])[0]
    d = len(enc.word_spans)
    variants = mask_variants(
        tiny_llama,
        [enc],
        [~np.eye(d, dtype=bool)[-4:]],
        "word",
        "remove",
        lambda t: tiny_llama.encode(t, chat=True),
    )[0]
    contexts = [enc, *variants]
    assert shared_prefix_length([c.input_ids for c in contexts]) > 64  # system prompt + 60 words
    cont = [[11, 22, 33]] * len(contexts)
    foil = [[44, 55]] * len(contexts)
    engine = Engine(NextTokenScorer(tiny_llama), max_batch_tokens=300)
    plain = engine.continuation_logprobs(contexts, cont, foil, min_shared_prefix=10**9)
    engine.passes = 0
    cached = engine.continuation_logprobs(contexts, cont, foil, min_shared_prefix=8)
    assert engine.passes >= 1
    for a, b in zip(plain, cached, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("budget", [64, 4096])
def test_reference_prefix_reuse_equals_full_forwards(tiny_llama, budget) -> None:
    """Rows reusing their reference's KV cache (several references per batch, a first-token
    ablation with nothing to reuse, generated-token drops) equal plain full forwards."""
    from explainlm.engine import Engine
    from explainlm.generation import NextTokenScorer
    from explainlm.methods.perturbation import mask_variants

    contexts, conts, foils, refs = [], [], [], []
    for p, prompt in enumerate(["a wonderful , moving film", "the plot was dull and far too long"]):
        enc = tiny_llama.encode([prompt])[0]
        d = len(enc.word_spans)
        variants = mask_variants(
            tiny_llama, [enc], [~np.eye(d, dtype=bool)], "word", "remove", tiny_llama.encode
        )[0]
        cont = [11 + p, 22, 33, 44]
        ref = len(contexts)
        for k, ctx in enumerate([enc, *variants, enc, enc]):
            contexts.append(ctx)
            refs.append(ref)
            # the last two rows drop a generated token, as occlusion of generated tokens does
            drop = {len(variants) + 1: 1, len(variants) + 2: 2}.get(k)
            conts.append([t for j, t in enumerate(cont) if j != drop])
            foils.append([55, 66])
    engine = Engine(NextTokenScorer(tiny_llama), max_batch_tokens=budget)
    plain = engine.continuation_logprobs(contexts, conts, foils, min_shared_prefix=10**9)
    engine.passes = 0
    reused = engine.continuation_logprobs(contexts, conts, foils, references=refs)
    assert engine.passes >= 2
    for a, b in zip(plain, reused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="reference itself"):
        engine.continuation_logprobs(contexts[:2], conts[:2], references=[1, 0])
