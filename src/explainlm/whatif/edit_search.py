"""The search behind :mod:`explainlm.whatif.counterfactuals`: a beam search over sets of word
edits by number of edits (:func:`edit_search`, a generator driven by
:func:`~explainlm.whatif.oracle.drive`), and the choice of ``n`` diverse successes among those with
the fewest edits (:func:`select_diverse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from explainlm.whatif.goals import Goal
from explainlm.whatif.oracle import QueryCounter, Search
from explainlm.whatif.text import Edit, WordText

if TYPE_CHECKING:
    from explainlm.whatif.counterfactuals import CounterfactualConfig

State = frozenset  # of Edit


def edit_search(
    wt: WordText,
    goal: Goal,
    cands: dict[int, list[Edit]],
    cfg: CounterfactualConfig,
    counter: QueryCounter,
) -> Search[list[tuple[State, np.ndarray]]]:
    """Beam search over edit sets (a generator driven by :func:`~explainlm.whatif.oracle.drive`)."""
    frontier: list[State] = [frozenset([e]) for es in cands.values() for e in es]
    successes: list[tuple[State, np.ndarray]] = []
    best_single: dict[int, list[Edit]] = {}
    seen: set[State] = set()
    for level in range(1, cfg.max_edits + 1):
        if not frontier or counter.exhausted:
            break
        texts = [wt.replace({e.index: e.replacement for e in s}) for s in frontier]
        admitted = set(counter.admit(texts))
        kept = [(s, t) for s, t in zip(frontier, texts, strict=True) if t in admitted]
        if not kept:
            break
        probs = yield ("probs", [t for _, t in kept])
        scored = []
        for (state, _), p in zip(kept, probs, strict=True):
            seen.add(state)
            if goal.reached(p):
                successes.append((state, p))
            else:
                scored.append((goal.value(p), state))
        if len(successes) >= cfg.n:
            break
        scored.sort(key=lambda x: -x[0])
        if level == 1:
            for _, state in scored:
                (e,) = state
                best_single.setdefault(e.index, [])
                if len(best_single[e.index]) < cfg.expand:
                    best_single[e.index].append(e)
        won = [s for s, _ in successes]
        frontier = []
        for _, state in scored[: cfg.beam]:
            used = {e.index for e in state}
            for pos, edits in best_single.items():
                if pos in used:
                    continue
                for e in edits:
                    new = state | {e}
                    if new not in seen and not any(w <= new for w in won) and new not in frontier:
                        frontier.append(new)
    return successes


def select_diverse(
    successes: Sequence[tuple[State, np.ndarray]], n: int, goal: Goal
) -> list[tuple[State, np.ndarray]]:
    """``n`` successes with the fewest edits, made diverse greedily (positions, then words)."""

    def distance(a: State, b: State) -> float:
        pa, pb = {e.index for e in a}, {e.index for e in b}
        ea = {(e.index, e.replacement) for e in a}
        eb = {(e.index, e.replacement) for e in b}
        return 0.5 * (1 - len(pa & pb) / len(pa | pb)) + 0.5 * (1 - len(ea & eb) / len(ea | eb))

    pool = sorted(successes, key=lambda sp: (len(sp[0]), -goal.value(sp[1])))
    chosen: list[tuple[State, np.ndarray]] = []
    while pool and len(chosen) < n:
        size = len(pool[0][0])
        same = [sp for sp in pool if len(sp[0]) == size]
        if not chosen:
            pick = same[0]
        else:
            pick = max(same, key=lambda sp: min(distance(sp[0], c[0]) for c in chosen))
        chosen.append(pick)
        pool = [sp for sp in pool if sp is not pick]
    return chosen
