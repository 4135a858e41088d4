"""Batching for training and evaluation: dynamic padding, length-sorted within shuffled chunks.

>>> import numpy as np
>>> length_batches([3, 1, 2, 5], 2, None)          # no rng: sorted by length, for evaluation
[[1, 2], [0, 3]]
>>> sorted(sum(length_batches([3, 1, 2, 5], 2, np.random.default_rng(0)), []))
[0, 1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

CHUNK_BATCHES = 50  # batches per shuffled chunk that is sorted by length (less padding on CPU)


def length_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None
) -> list[list[int]]:
    """Index batches: shuffled, then sorted by length within chunks; no shuffling when rng is None."""
    n = len(lengths)
    order = rng.permutation(n) if rng is not None else np.argsort(lengths, kind="stable")
    chunk = batch_size * CHUNK_BATCHES
    batches: list[list[int]] = []
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        if rng is not None:
            part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        batches += [
            [int(i) for i in part[b : b + batch_size]] for b in range(0, len(part), batch_size)
        ]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def collate(
    ids: Sequence[Sequence[int]], idx: Sequence[int], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    width = max(len(ids[i]) for i in idx)
    input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


@torch.inference_mode()
def predict_ids(
    model: torch.nn.Module,
    ids: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    device: torch.device,
) -> list[int]:
    model.eval()
    out = [0] * len(ids)
    for idx in length_batches([len(x) for x in ids], batch_size * 2, None):
        logits = model(**collate(ids, idx, pad_id, device)).logits
        for i, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
            out[i] = int(p)
    return out
