"""Seeds come from each example's identity: results do not depend on batching, chunking or order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explainlm.attribution import explain
from explainlm.generation import explain_generation
from explainlm.models import Generator, make_task

TEXTS = ["a wonderful , touching film", "dull and boring", "not bad at all , really", "fine"]
SEEDED = {
    "random": {"seed": 3},
    "lime": {"n_samples": 48, "seed": 3},
    "kernel_shap": {"exact_max_features": 0, "n_samples": 40, "seed": 3},
    "smoothgrad": {"samples": 2, "seed": 3},
}


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return make_task(tiny_bert)


@pytest.fixture(scope="module")
def reference(clf):
    res = explain(TEXTS, clf, list(SEEDED), method_params=SEEDED, check=False)
    return {(e.text, e.method): np.asarray(e.word_scores) for e in res}


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(len(TEXTS))), cut=st.integers(0, len(TEXTS)))
def test_shuffled_and_split_inputs_give_identical_scores(clf, reference, order, cut) -> None:
    texts = [TEXTS[i] for i in order]
    chunks = [texts[:cut], texts[cut:]]
    for chunk in chunks:
        if not chunk:
            continue
        res = explain(
            chunk, clf, list(SEEDED), method_params=SEEDED, check=False, max_batch_tokens=64
        )
        for e in res:
            ref = reference[(e.text, e.method)]
            if e.method == "random":
                assert np.array_equal(e.word_scores, ref)  # no model involved: bit-identical
            else:  # same seeds; only the padding of the shared passes differs
                np.testing.assert_allclose(e.word_scores, ref, rtol=1e-5, atol=1e-6)


def test_generation_seeds_ignore_order(tiny_llama) -> None:
    gen = Generator(tiny_llama, chat=False)
    prompts = ["a wonderful , touching film", "dull and boring"]
    params = {"lime": {"n_samples": 30}, "random": {}}
    kw = dict(max_new_tokens=2, method_params=params, check=False)
    a = explain_generation(prompts, gen, ["lime", "random"], **kw)
    b = explain_generation(prompts[::-1], gen, ["lime", "random"], **kw)
    by_b = {(x.prompt, x.method): x for x in b}
    for x in a:
        y = by_b[(x.prompt, x.method)]
        np.testing.assert_allclose(
            np.array(x.matrix, dtype=float), np.array(y.matrix, dtype=float), rtol=1e-5, atol=1e-6
        )
