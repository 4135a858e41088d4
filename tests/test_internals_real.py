"""The internals on the built-in SmolLM2-135M (marked ``real``)."""

from __future__ import annotations

import pytest
import torch

from explainlm.internals import lens, trace

pytestmark = pytest.mark.real

PROMPT = "The Eiffel Tower is located in the city of"


@pytest.fixture(scope="module")
def smollm():
    from explainlm.models import ModelWrapper

    return ModelWrapper.load("smollm2-135m", device="cpu")


def test_lens_final_layer_is_greedy_next_token(smollm) -> None:
    res = lens(smollm, PROMPT, top_k=3, target=" Paris")
    enc = smollm.encode([PROMPT], chat=False)[0]
    with torch.no_grad():
        logits = smollm.forward(input_ids=torch.tensor([enc.input_ids])).logits[0, -1]
    assert res.top_ids[-1][-1][0] == int(logits.argmax())
    assert res.to_json()["layers"][-1]["layer"] == smollm.model.config.num_hidden_layers - 1


def test_causal_tracing_restores_at_full_patch(smollm) -> None:
    res = trace(smollm, PROMPT, target=" Paris", subject="The Eiffel Tower", component="resid")
    assert res.clean > res.corrupt
    # the last layer at the last position carries the whole clean prediction
    assert res.grid[-1][-1] == pytest.approx(1.0, abs=1e-4)
    assert len(res.grid) == 30 and len(res.grid[0]) == len(res.tokens)
