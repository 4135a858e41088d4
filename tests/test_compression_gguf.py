"""llama.cpp-native explanations of the built-in GGUF model against the de-quantized torch model.

Needs the optional extra ``gguf-native`` (llama-cpp-python); skipped without it (``make test-gguf``).

Tolerance. Both runtimes hold the same weights (the torch model is the GGUF blocks de-quantized
exactly). llama.cpp's CPU kernels differ in two roundings: each activation row entering a
quantized matmul is itself quantized to 8 bits per block of 32 (``Q8_1``/``Q8_0``: scale = block
absmax / 127), and keys and values are stored as float16 in the KV cache.
:func:`simulate_kernel_precision` applies those roundings to the torch model; the largest
difference between the simulated and the plain torch values, δ, is the size of the effect the
kernels' precision produces. llama.cpp must agree with torch within 2δ: the simulation and
llama.cpp round in somewhat different places (rounding mode, keys before rather than after the
rotary embedding, accumulation order), so their errors are of the same size but not identical.
(Measured on the two test texts: class log-probs differ by at most 0.159 between llama.cpp and
torch with δ = 0.149; occlusion scores by at most 0.045 with δ = 0.043. llama.cpp's deviation is of
the size the simulated roundings predict, not larger.)
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from explainlm.compression.gguf_native import (  # noqa: E402
    LlamaCppZeroShot,
    gguf_path,
    simulate_kernel_precision,
)
from explainlm.engine import Engine  # noqa: E402
from explainlm.evaluation import prepare_items  # noqa: E402
from explainlm.methods import get_method  # noqa: E402

pytestmark = [pytest.mark.real, pytest.mark.gguf]

TEXTS = ["A wonderful film.", "Dull and too long."]


@pytest.fixture(scope="module")
def smollm():
    from explainlm.models import load_model

    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def native(smollm):
    return LlamaCppZeroShot(smollm, gguf_path(smollm.wrapper), n_ctx=256)


def _occlusion(clf, labels):
    engine = Engine(clf)
    items = prepare_items(engine, TEXTS, labels)
    return np.concatenate([e.word_scores for e in get_method("occlusion").attribute(engine, items)])


def test_llamacpp_class_scores_track_torch(smollm, native):
    enc = smollm.encode(TEXTS)
    batch = smollm.wrapper.collate(enc)
    torch_scores = smollm.scores(enc).numpy()
    llama_scores = native.class_scores(batch).numpy()
    with simulate_kernel_precision(smollm.wrapper.model):
        sim_scores = smollm.scores(enc).numpy()
    delta = np.abs(sim_scores - torch_scores).max()
    gap = np.abs(llama_scores - torch_scores).max()
    print(f"class scores: llama.cpp vs torch {gap:.4f}, simulated kernel precision {delta:.4f}")
    assert gap <= 2 * delta, (gap, delta)
    assert [r.argmax() for r in llama_scores] == [r.argmax() for r in torch_scores]


def test_llamacpp_occlusion_equals_torch_occlusion(smollm, native):
    labels = [p.label for p in smollm.predict(TEXTS)]
    torch_occ = _occlusion(smollm, labels)
    llama_occ = _occlusion(native, labels)
    with simulate_kernel_precision(smollm.wrapper.model):
        sim_occ = _occlusion(smollm, labels)
    delta = np.abs(sim_occ - torch_occ).max()
    gap = np.abs(llama_occ - torch_occ).max()
    print(f"occlusion: llama.cpp vs torch {gap:.4f}, simulated kernel precision {delta:.4f}")
    assert gap <= 2 * delta, (gap, delta)
    # the most important word agrees wherever its lead over the runner-up exceeds what the
    # tolerance allows each of the two scores to move (measured: on these texts the kernels'
    # precision is enough to swap two close words, so a blanket "same top word" would be false)
    start = 0
    for text in TEXTS:
        n = len(smollm.encode([text])[0].word_spans)
        a, b = torch_occ[start : start + n], llama_occ[start : start + n]
        top2 = np.sort(np.abs(a))[-2:]
        if top2[1] - top2[0] > 2 * 2 * delta:
            assert np.argmax(np.abs(a)) == np.argmax(np.abs(b))
        start += n


def test_gradient_methods_are_refused(smollm, native):
    from explainlm.errors import UserError

    engine = Engine(native)
    items = engine.prepare(TEXTS[:1])
    with pytest.raises(UserError, match="forward passes only"):
        get_method("saliency").attribute(engine, items)
