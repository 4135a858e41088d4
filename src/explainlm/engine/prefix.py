"""Prefix KV-cache reuse for zero-shot classification of long texts by a causal LM.

A perturbed text (a word or sentence removed) equals its original up to the first change, so a
causal LM's keys and values of that prefix are the original's: only the rest needs computing. For a
zero-shot classifier with one-token verbalizers the class scores are the log-probabilities of the
verbalizers at the prompt's last position (minus the calibration bias), which
:meth:`~explainlm.engine.continuation.ContinuationScoring.continuation_logprobs` reads with the
original as every variant's reference. On a long text, occlusion then runs about half the tokens
(a removed word sits in the middle on average) — the same reuse generation occlusion has.

Other classifiers (encoders, multi-token verbalizers) keep the full forwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from explainlm.models.wrapper import Encoding

REUSE_PREFIXES = True  # tests compare against full forwards by turning it off


def reusable(engine: Any) -> bool:
    """True when the engine's classifier is a decoder scoring one-token verbalizers."""
    clf = engine.classifier
    return (
        REUSE_PREFIXES
        and bool(getattr(engine.wrapper, "is_decoder", False))
        and bool(getattr(clf, "single_token", False))
        and getattr(clf, "verbalizer_ids", None) is not None
    )


def class_scores_reusing_prefixes(
    engine: Any, items: Sequence[Any], flat: Sequence[Any], owner: Sequence[int]
) -> torch.Tensor | None:
    """Class scores ``[len(flat), classes]`` of the variants ``flat`` (``owner[j]``: the item
    variant ``j`` perturbs), each reusing its original's KV cache; None when not applicable."""
    if not reusable(engine) or not flat:
        return None
    clf = engine.classifier
    label_ids = [int(v[0]) for v in clf.verbalizer_ids]
    contexts = [it.encoding for it in items] + list(flat)
    references = list(range(len(items))) + [int(k) for k in owner]
    reads = [[(0, t) for t in label_ids]] * len(contexts)
    logprobs = engine.continuation_logprobs(
        contexts, [[label_ids[0]]] * len(contexts), references=references, reads=reads
    )
    scores = torch.from_numpy(np.stack(logprobs[len(items) :])).float()
    return scores - clf.bias.float().cpu()


def suffix_cost(
    contexts: Sequence[Encoding], continuations: Sequence[Sequence[int]], references: Sequence[int]
) -> int:
    """The cost of the rows in tokens when every row reuses its reference's prefix (references
    run in full): a row's suffix plus a quarter of its cached prefix, as its pass counts it."""
    total = 0
    for i, r in enumerate(references):
        seq = list(contexts[i].input_ids) + list(continuations[i])
        if i == r:
            total += len(seq)
            continue
        ref = list(contexts[r].input_ids)
        common = next(
            (k for k, (a, b) in enumerate(zip(seq, ref, strict=False)) if a != b),
            min(len(seq), len(ref)),
        )
        start = max(0, min(common, len(contexts[i]) - 1))
        total += len(seq) - start + start / 4
    return int(total)
