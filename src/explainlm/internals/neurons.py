"""Top-activating dataset examples for a neuron or a direction at a hook point.

The activation of a token is ``x[neuron]`` or ``x · direction`` (e.g. a probe's weight vector from
``probe(..., directions=True)``); each text is scored by its most activating token, and the ``k``
highest-scoring texts come back with that token. Activations stream: nothing but the scores is kept.

>>> from explainlm.models import ModelWrapper
>>> w = ModelWrapper.load("smollm2-135m")                                            # doctest: +SKIP
>>> top_examples(w, ["a fine film", "a dull film"], "layers.10.mlp.out", neuron=7, k=1)  # doctest: +SKIP
[{'rank': 1, 'index': 0, 'text': 'a fine film', 'token': ' film', 'position': 2, 'activation': ...}]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from explainlm.errors import UserError
from explainlm.internals.cache import iter_activations


def top_examples(
    wrapper: Any,
    texts: Sequence[str],
    point: str,
    *,
    neuron: int | None = None,
    direction: Sequence[float] | torch.Tensor | None = None,
    k: int = 10,
    lowest: bool = False,
    template: str | None = None,
    max_batch_tokens: int = 4096,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The ``k`` texts whose most activating token is highest (``lowest=True``: most negative)."""
    if (neuron is None) == (direction is None):
        raise UserError("give exactly one of a neuron index or a direction")
    if point.endswith("attn.pattern"):
        raise UserError("top examples need a vector-valued point, not an attention pattern")
    vec = None if direction is None else torch.as_tensor(direction, dtype=torch.float32)
    encs = wrapper.encode(list(texts), template=template, chat=False)
    scored: list[tuple[float, int, int]] = []
    for items in iter_activations(
        wrapper,
        texts,
        [point],
        max_batch_tokens=max_batch_tokens,
        progress=progress,
        encodings=encs,
    ):
        for i, acts in items:
            x = acts[point]
            if vec is not None:
                if vec.shape[0] != x.shape[-1]:
                    raise UserError(f"the direction has {vec.shape[0]} dims, {point} {x.shape[-1]}")
                a = x @ vec
            else:
                assert neuron is not None
                if not 0 <= neuron < x.shape[-1]:
                    raise UserError(f"neuron {neuron} out of range 0..{x.shape[-1] - 1}")
                a = x[:, neuron]
            a = -a if lowest else a
            pos = int(a.argmax())
            scored.append((float(a[pos]), i, pos))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [
        {
            "rank": r + 1,
            "index": i,
            "text": encs[i].text,
            "token": encs[i].tokens[pos],
            "position": pos,
            "activation": -v if lowest else v,
        }
        for r, (v, i, pos) in enumerate(scored[:k])
    ]
