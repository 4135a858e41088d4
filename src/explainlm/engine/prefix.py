"""Prefix KV-cache reuse for zero-shot classification of long texts by a causal LM.

A perturbed text (a word or sentence removed) equals its original up to the first change, so a
causal LM's keys and values of that prefix are the original's: only the rest needs computing. For a
zero-shot classifier with one-token verbalizers the class scores are the log-probabilities of the
verbalizers at the prompt's last position (minus the calibration bias), which
:meth:`~explainlm.engine.continuation.ContinuationScoring.continuation_logprobs` reads with the
original as every variant's reference. On a long text, occlusion then runs about half the tokens
(a removed word sits in the middle on average) — the same reuse generation occlusion has.

Other classifiers (encoders, multi-token verbalizers) keep the full forwards.

Reuse runs fewer tokens in more, smaller passes (suffixes of many lengths, grouped by length). A
pass has a fixed cost however small it is, and it weighs more where tokens are cheap: for SmolLM2
at 2 threads on an AMX CPU it is worth 150–230 tokens in bf16 and 50–110 in fp32
(benchmarks/prefix_reuse.py), so short texts are scored faster by full forwards in bf16.
:func:`plan_reuse` lays out the passes, and the engine compares both plans' cost with the per-pass
overhead its precision plan measured (:attr:`PrecisionPlan.pass_overhead_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explainlm.models.batching import token_budget_batches
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
    continuations = [[label_ids[0]]] * len(contexts)
    plan = engine.reuse_plan(contexts, continuations, references)
    if not engine.reuse_pays(plan, [len(e) for e in flat], engine.forward_batch_tokens):
        return None  # full forwards of the variants are predicted faster
    reads = [[(0, t) for t in label_ids]] * len(contexts)
    logprobs = engine.continuation_logprobs(
        contexts, continuations, references=references, reads=reads, plan=plan
    )
    scores = torch.from_numpy(np.stack(logprobs[len(items) :])).float()
    return scores - clf.bias.float().cpu()


@dataclass(frozen=True)
class ReusePlan:
    """The passes of a prefix-reusing scoring: per wave, the reference rows' full batches and the
    dependent rows' suffix batches; ``starts[i]``: where row i's own computation starts."""

    seqs: list[list[int]]
    starts: list[int]
    references: list[int]
    waves: list[tuple[list[list[int]], list[list[int]]]]

    def suffix_tokens(self) -> int:
        """Tokens the rows run (references in full, the others from their start) plus a quarter
        of each cached prefix: the progress estimate's count."""
        total = 0.0
        for i, (seq, start) in enumerate(zip(self.seqs, self.starts, strict=True)):
            total += len(seq) if self.references[i] == i else len(seq) - start + start / 4
        return int(total)

    def cost(self, pass_overhead: float) -> float:
        """Tokens the passes run (padding and a quarter of each cached prefix included, as the
        batches are sized) plus ``pass_overhead`` tokens per pass."""
        total = 0.0
        for full, batches in self.waves:
            for rows in full:
                total += len(rows) * max(len(self.seqs[r]) for r in rows) + pass_overhead
            for idx in batches:
                width = max(len(self.seqs[i]) - self.starts[i] for i in idx)
                total += len(idx) * (width + max(self.starts[i] for i in idx) // 4) + pass_overhead
        return total


def plan_reuse(
    contexts: Sequence[Encoding],
    continuations: Sequence[Sequence[int]],
    references: Sequence[int],
    budget: int,
) -> ReusePlan:
    """The passes of a prefix-reusing scoring of ``budget``-token batches: every row's reuse start
    and the batches (:meth:`~explainlm.engine.continuation.ContinuationScoring._reusing_prefixes`).

    Reference rows run in full (right-padded, so positions need no shift) and keep their keys
    and values. Row r then starts at ``c_r`` = the length of its common prefix with the
    reference (at most its context length − 1, the first position whose logits it needs), so
    no row recomputes anything its reference already computed. Rows are sorted by suffix
    length; the budget counts suffix tokens plus a quarter of the cached prefix (memory).
    References are processed in waves so that only a few budgets' worth of caches is alive.
    """
    n = len(contexts)
    if len(references) != n:
        raise ValueError("references needs one entry per row")
    seqs = [list(c.input_ids) + list(k) for c, k in zip(contexts, continuations, strict=True)]
    refs = sorted({int(r) for r in references})
    for r in refs:
        if references[r] != r:
            raise ValueError(f"row {r} is a reference, so it must reference itself")
    starts = [0] * n
    for i, r in enumerate(references):
        if i != r:
            common = shared_prefix_length([seqs[i], seqs[r]]) if seqs[i] and seqs[r] else 0
            starts[i] = max(0, min(common, len(contexts[i]) - 1, len(seqs[r])))
    dependents: dict[int, list[int]] = {r: [] for r in refs}
    for i, r in enumerate(references):
        if i != r:
            dependents[int(r)].append(i)
    lengths = [len(x) for x in seqs]
    waves = []
    for wave in _waves(refs, [lengths[r] for r in refs], budget):
        full = [
            [wave[j] for j in idx]
            for idx in token_budget_batches([lengths[r] for r in wave], budget)
        ]
        rows = sorted(
            (i for r in wave for i in dependents[r]), key=lambda i: starts[i] - lengths[i]
        )
        waves.append((full, _prefix_batches(rows, starts, lengths, budget)))
    return ReusePlan(seqs, starts, [int(r) for r in references], waves)


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all sequences share, leaving every one at least one own token."""
    if not sequences:
        return 0
    first = sequences[0]
    n = min(len(x) for x in sequences) - 1
    k = 0
    while k < n and all(x[k] == first[k] for x in sequences):
        k += 1
    return max(k, 0)


def _waves(refs: Sequence[int], lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive groups of reference rows holding about ``4 × budget`` cached tokens each."""
    waves: list[list[int]] = [[]]
    total = 0
    for r, n in zip(refs, lengths, strict=True):
        if waves[-1] and total + n > 4 * budget:
            waves.append([])
            total = 0
        waves[-1].append(r)
        total += n
    return [w for w in waves if w]


def _prefix_batches(
    rows: Sequence[int],
    starts: Sequence[int],
    lengths: Sequence[int],
    budget: int,
    max_padding: float = 0.2,
) -> list[list[int]]:
    """Greedy batches of rows sorted by suffix length (longest first).

    A batch costs rows × (widest suffix + largest cached prefix / 4) and stays within ``budget``;
    a row whose suffix is more than ``max_padding`` shorter than the batch's widest starts a new
    batch (suffixes range from a few tokens to the whole prompt, and padding is wasted compute).
    """
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in rows:
        trial = [*cur, i]
        width = max(lengths[j] - starts[j] for j in trial)
        cost = len(trial) * (width + max(starts[j] for j in trial) // 4)
        ragged = lengths[i] - starts[i] < (1 - max_padding) * width
        if cur and (cost > budget or ragged):
            batches.append(cur)
            trial = [i]
        cur = trial
    if cur:
        batches.append(cur)
    return batches
