"""Keep-masks of generation items as teacher-forced rows that share KV caches.

A mask over a generation item's features (the prompt's units, then the earlier generated tokens)
becomes one row: the prompt with the removed units removed, followed by the kept generated tokens
(the last one is never a feature, so it is always kept). Every output i reads its own token at the
position after the kept tokens before it, so its value is log p(token_i | the masked prompt and the
kept tokens before i), also when token i itself was dropped (its own presence does not change its
probability). Each item's unablated row is the reference of all its rows, so the engine reuses its
keys and values up to each row's first change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from explainlm.engine.masks import mask_variants
from explainlm.models.wrapper import Encoding

if TYPE_CHECKING:
    from explainlm.generation.engine import GenerationEngine, GenerationItem


class ContinuationPlan:
    """Rows of many items, scored together in shared passes (:meth:`run`)."""

    def __init__(self, engine: GenerationEngine) -> None:
        self.engine = engine
        self.contexts: list[Encoding] = []
        self.continuations: list[list[int]] = []
        self.reads: list[list[tuple[int, int]]] = []
        self.references: list[int] = []

    def _add(self, context: Encoding, kept: list[int], item: GenerationItem, ref: int) -> int:
        cont, foil = item.continuation, item.foil_ids
        positions = reads_for(kept, item.rows)
        reads = [(p, cont[i]) for i, p in enumerate(positions)]
        if foil is not None:
            reads += [(p, foil[i]) for i, p in enumerate(positions)]
        self.contexts.append(context)
        self.continuations.append([cont[k] for k in kept])
        self.reads.append(reads)
        row = len(self.contexts) - 1
        self.references.append(row if ref < 0 else ref)
        return row

    def add_item(
        self,
        item: GenerationItem,
        masks: np.ndarray,
        granularity: str,
        replace: str,
        encode: Callable[[list[str]], list[Encoding]],
    ) -> tuple[int, list[int]]:
        """Add an item's reference row and one row per mask; return their row indices."""
        rows = item.rows
        everything = list(range(rows))
        ref = self._add(item.prompt, everything, item, -1)
        d = self.engine.feature_count(item, granularity, shared=True)
        prompt_masks = masks[:, :d]
        changed = [r for r, pm in enumerate(prompt_masks) if not pm.all()]
        variants = mask_variants(
            self.engine.wrapper,
            [item.prompt],
            [prompt_masks[changed]],
            granularity,
            replace,
            encode,
        )[0]
        context_of = dict(zip(changed, variants, strict=True))
        out = []
        for r, m in enumerate(masks):
            gen_keep = m[d:] if m.size > d else np.ones(max(rows - 1, 0), dtype=bool)
            kept = [k for k in everything if k == rows - 1 or gen_keep[k]]
            if r not in context_of and len(kept) == rows:
                out.append(ref)  # the unablated input: the reference itself
                continue
            out.append(self._add(context_of.get(r, item.prompt), kept, item, ref))
        return ref, out

    def run(self) -> list[np.ndarray]:
        """The target value of every output of every row ``[n_outputs]``."""
        eng = self.engine
        logps = eng.engine.continuation_logprobs(
            self.contexts, self.continuations, references=self.references, reads=self.reads
        )
        return [eng.target_values(lp) for lp in logps]


def reads_for(kept: Sequence[int], rows: int) -> list[int]:
    """The position each of ``rows`` outputs reads: the number of kept tokens before it."""
    flags = np.zeros(rows, dtype=np.int64)
    flags[list(kept)] = 1
    return [int(v) for v in np.concatenate([[0], np.cumsum(flags)[:-1]])][:rows]
