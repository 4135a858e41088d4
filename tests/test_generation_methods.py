"""LIME, KernelSHAP, the random control and attention per generated token, against brute-force
Shapley values, the lime package, the documented seeding and a pass over each prefix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainlm.generation import explain_generation
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


def test_kernel_shap_per_token_equals_brute_force_shapley(gen) -> None:
    """Exact Shapley values of the prompt's words, for each generated token's log-prob."""
    import itertools
    import math

    w, tok = gen.wrapper, gen.wrapper.tokenizer
    a = explain_generation([PROMPT], gen, ["kernel_shap"], max_new_tokens=3)[0]
    cont = gen.generate([PROMPT], max_new_tokens=3)[0].token_ids
    words = PROMPT.split(" ")
    d = len(words)
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    value = {}
    for k in range(d + 1):
        for s in itertools.combinations(range(d), k):
            ids = tok(" ".join(words[j] for j in s))["input_ids"] or [start]
            value[s] = naive_logprobs(w, ids, cont)
    phi = np.zeros((3, d))
    for i in range(d):
        others = [j for j in range(d) if j != i]
        for k in range(d):
            for s in itertools.combinations(others, k):
                wt = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
                phi[:, i] += wt * (value[tuple(sorted(s + (i,)))] - value[s])
    np.testing.assert_allclose(np.array([r[:d] for r in a.matrix], dtype=float), phi, atol=1e-4)
    assert a.diagnostics == {"exact": True, "n_coalitions": 2**d, "precision": "fp32"}


def test_lime_per_token_agrees_with_lime_package(gen) -> None:
    lime_text = pytest.importorskip("lime.lime_text")
    w, tok = gen.wrapper, gen.wrapper.tokenizer
    prompt = "a wonderful , touching film that is never dull"
    a = explain_generation(
        [prompt], gen, ["lime"], max_new_tokens=2, method_params={"lime": {"n_samples": 1500}}
    )[0]
    cont = gen.generate([prompt], max_new_tokens=2)[0].token_ids
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def logprobs(texts: list[str]) -> np.ndarray:
        # lime leaves the separators of removed words; a BPE tokenizer would see extra spaces
        texts = [" ".join(t.split()) for t in texts]
        return np.stack([naive_logprobs(w, tok(t)["input_ids"] or [start], cont) for t in texts])

    explainer = lime_text.LimeTextExplainer(
        split_expression=" ", bow=False, mask_string="", random_state=0, feature_selection="none"
    )
    exp = explainer.explain_instance(
        prompt, logprobs, labels=(0, 1), num_features=20, num_samples=1500
    )
    d = len(prompt.split(" "))
    for i in range(2):
        ref = np.zeros(d)
        for pos, v in exp.as_map()[i]:
            ref[pos] = v
        assert np.corrcoef(np.array(a.matrix[i][:d], dtype=float), ref)[0, 1] > 0.9
        assert a.matrix[i][d:] == [None] * (len(a.matrix[i]) - d)  # the prompt's words only
    assert len(a.diagnostics["r2"]) == 2 and a.diagnostics["n_samples"] == 1500


def test_random_control_is_the_seeded_draw_of_each_generation(gen) -> None:
    from explainlm.engine.contract import item_rng
    from explainlm.generation import GenerationEngine
    from explainlm.targets import GenerationTarget

    a = explain_generation(
        [PROMPT], gen, ["random"], max_new_tokens=3, method_params={"random": {"seed": 5}}
    )[0]
    engine = GenerationEngine(gen, GenerationTarget())
    item = engine.prepare(gen.generate([PROMPT], max_new_tokens=3))[0]
    d = len(PROMPT.split(" "))
    draw = item_rng(5, item.key).standard_normal((3, d + 2))  # 3 tokens × (5 words + 2 earlier)
    for i, row in enumerate(a.matrix):
        assert row[: d + i] == pytest.approx(list(draw[i, : d + i]))
        assert row[d + i :] == [None] * (2 - i)  # nothing from the token itself or later


def test_attention_per_token_equals_a_pass_over_each_prefix(gen) -> None:
    """One pass over prompt + continuation, read at each token's query position, equals a
    separate pass over each prefix (causal attention)."""
    from explainlm.methods.attention import rollout

    w = gen.wrapper
    res = explain_generation(
        [PROMPT], gen, ["attention", "attention_rollout"], max_new_tokens=3, granularity="token"
    )
    cont = gen.generate([PROMPT], max_new_tokens=3)[0].token_ids
    prompt_ids = w.tokenizer(PROMPT)["input_ids"]
    w.model.set_attn_implementation("eager")
    try:
        for i in range(3):
            ids = torch.tensor([prompt_ids + cont[:i]])
            with torch.no_grad():
                att = torch.stack(w.model(input_ids=ids, output_attentions=True).attentions)[:, 0]
            q = ids.shape[1] - 1
            np.testing.assert_allclose(
                np.array(res[0].matrix[i][: q + 1], dtype=float),
                att[-1].mean(0)[q].numpy(),
                rtol=1e-4,
                atol=1e-6,
            )
            np.testing.assert_allclose(
                np.array(res[1].matrix[i][: q + 1], dtype=float),
                rollout(att)[q].numpy(),
                rtol=1e-4,
                atol=1e-6,
            )
    finally:
        w.model.set_attn_implementation("sdpa")
