"""The generator task and generation targets, on the tiny random Llama."""

from __future__ import annotations

import pytest
import torch

from explainlm.errors import UserError
from explainlm.models import Generator

PROMPTS = ["Once upon a time", "The capital of France is a city called"]


def test_greedy_generation_logprobs_equal_teacher_forcing(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    outs = gen.generate(PROMPTS, max_new_tokens=6)
    assert [g.prompt for g in outs] == PROMPTS
    for g in outs:
        assert 1 <= len(g.token_ids) <= 6 and len(g.logprobs) == len(g.token_ids)
        assert all(lp <= 0 for lp in g.logprobs)
    # teacher forcing the generated ids reproduces the log-probs seen during generation
    forced = gen.score([g.prompt for g in outs], [g.token_ids for g in outs])
    for g, tf in zip(outs, forced, strict=True):
        assert tf.token_ids == g.token_ids
        assert tf.logprobs == pytest.approx(g.logprobs, abs=1e-4)


def test_greedy_tokens_are_argmax(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    g = gen.generate([PROMPTS[0]], max_new_tokens=3)[0]
    ids = tiny_llama.tokenizer(PROMPTS[0])["input_ids"]
    for t in g.token_ids:
        with torch.no_grad():
            logits = tiny_llama.model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert int(logits.argmax()) == t
        ids.append(t)


def test_batched_generation_equals_single(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    both = gen.generate(PROMPTS, max_new_tokens=5)
    for p, g in zip(PROMPTS, both, strict=True):
        alone = gen.generate([p], max_new_tokens=5)[0]
        assert alone.token_ids == g.token_ids
        assert alone.logprobs == pytest.approx(g.logprobs, abs=1e-4)


def test_seeded_sampling_is_reproducible(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    a = gen.generate(PROMPTS, max_new_tokens=8, do_sample=True, seed=3)
    b = gen.generate(PROMPTS, max_new_tokens=8, do_sample=True, seed=3)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


def test_predict_and_errors(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    p = gen.predict(["Hello"], max_new_tokens=2)[0]
    assert p.label == gen.generate(["Hello"], max_new_tokens=2)[0].text
    assert 0 < list(p.probs.values())[0] <= 1
    with pytest.raises(UserError):
        gen.generate(["Hello"], max_new_tokens=0)
    with pytest.raises(UserError):
        gen.score(["a"], [""])
    with pytest.raises(UserError):
        gen.score(["a", "b"], ["x"])


def test_chat_generation_uses_template(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=True)
    g = gen.generate(["hi"], max_new_tokens=2)[0]
    assert g.prompt_encoding.sequence.startswith("<|im_start|>")
