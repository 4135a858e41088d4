"""Counterfactual explanations: the fewest word edits that change the model's decision.

For each text (Wachter et al. 2017's "closest possible world", searched over word edits, as MiCE
does — Ross et al. 2021):

1. **Where to edit**: words ranked by occlusion (leave-one-out) attribution for the predicted label,
   a method that is faithful by construction; the ``positions`` most important are edited first.
2. **What to put there**: candidates from the built-in LLM (label-conditioned infilling), from input
   embedding neighbours, and deletion (:mod:`explainlm.whatif.candidates`).
3. **Search**: a beam search by number of edits. Level 1 scores every single edit; level *k* extends
   the ``beam`` best non-flipping edit sets by one of the ``expand`` best single edits at another
   position. Every level's edited texts (of all texts at once) are scored in shared engine passes,
   under a per-text query budget. A search stops at the first level with ``n`` successes.
4. **Choice**: the ``n`` counterfactuals with the fewest edits, greedily made diverse (different
   positions first, then different words).

The goal is a flip (to ``target``, or away from the predicted label) or, with ``margin``, moving
the objective (p(target), or 1 − p(predicted)) by at least ``margin``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainlm.errors import UserError
from explainlm.progress import Progress
from explainlm.whatif.candidates import Slot
from explainlm.whatif.edit_search import edit_search, select_diverse
from explainlm.whatif.goals import Goal, make_goal
from explainlm.whatif.oracle import Oracle, QueryCounter, drive
from explainlm.whatif.text import Edit, WordText, word_edit_distance


@dataclass
class CounterfactualConfig:
    """Search settings (validated; see the module docstring)."""

    n: int = 3
    max_edits: int = 4
    max_queries: int = 400
    positions: int = 6
    per_source: int = 6
    sources: tuple[str, ...] = ("llm", "embedding", "delete")
    beam: int = 4
    expand: int = 3
    target: str | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        from explainlm.whatif.candidates import SOURCES

        for name in ("n", "max_edits", "max_queries", "positions", "per_source", "beam", "expand"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise UserError(f"unknown candidate source(s) {bad}; known: {', '.join(SOURCES)}")
        if self.margin is not None and not 0 < self.margin <= 1:
            raise UserError(f"margin must be in (0, 1], got {self.margin}")


@dataclass
class Counterfactual:
    """One edited text that reaches the goal."""

    text: str
    edits: list[Edit]
    spans: list[tuple[int, int]]
    label: str
    probs: dict[str, float]
    word_distance: int
    perplexity: float | None = None
    similarity: float | None = None

    @property
    def n_edits(self) -> int:
        return len(self.edits)

    def marked(self) -> str:
        from explainlm.whatif.text import EditedText

        return EditedText(self.text, tuple(self.edits), self.spans).marked()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "marked": self.marked(),
            "edits": [e.to_dict() for e in self.edits],
            "spans": [list(s) for s in self.spans],
            "label": self.label,
            "probs": self.probs,
            "n_edits": self.n_edits,
            "word_distance": self.word_distance,
            "perplexity": self.perplexity,
            "similarity": self.similarity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Counterfactual:
        return cls(
            d["text"],
            [Edit.from_dict(e) for e in d["edits"]],
            [tuple(s) for s in d["spans"]],  # type: ignore[misc]
            d["label"],
            d["probs"],
            int(d["word_distance"]),
            d.get("perplexity"),
            d.get("similarity"),
        )


@dataclass
class CounterfactualResult:
    """The counterfactual search for one text."""

    text: str
    label: str
    probs: dict[str, float]
    goal: dict[str, Any]
    success: bool = False
    counterfactuals: list[Counterfactual] = field(default_factory=list)
    queries: int = 0
    attribution: list[tuple[str, float]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    perplexity: float | None = None
    skipped: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "label": self.label,
            "probs": self.probs,
            "goal": self.goal,
            "success": self.success,
            "counterfactuals": [c.to_dict() for c in self.counterfactuals],
            "queries": self.queries,
            "attribution": [[w, s] for w, s in self.attribution],
            "positions": self.positions,
            "perplexity": self.perplexity,
            "skipped": self.skipped,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CounterfactualResult:
        return cls(
            d["text"],
            d["label"],
            d["probs"],
            d["goal"],
            bool(d["success"]),
            [Counterfactual.from_dict(c) for c in d["counterfactuals"]],
            int(d["queries"]),
            [(w, float(s)) for w, s in d["attribution"]],
            list(d["positions"]),
            d.get("perplexity"),
            d.get("skipped"),
            float(d.get("seconds", 0.0)),
        )


class CounterfactualGenerator:
    """Counterfactuals for many texts at once, sharing engine passes.

    ``candidates``: ``{"llm": LLMInfill, "embedding": EmbeddingNeighbours}`` (any subset; ``delete``
    needs nothing). ``lm`` and ``similarity`` (optional) add perplexity and similarity.
    """

    def __init__(
        self,
        oracle: Oracle,
        config: CounterfactualConfig,
        *,
        candidates: dict[str, Any] | None = None,
        lm: Any = None,
        similarity: Any = None,
    ) -> None:
        self.oracle = oracle
        self.config = config
        self.candidates = candidates or {}
        self.lm = lm
        self.similarity = similarity
        missing = [s for s in config.sources if s != "delete" and s not in self.candidates]
        if missing:
            raise UserError(f"no candidate generator for source(s): {', '.join(missing)}")

    def generate(
        self,
        texts: Sequence[str],
        progress: Progress | None = None,
        skip: Sequence[str | None] | None = None,
    ) -> list[CounterfactualResult]:
        """Counterfactuals for each text; ``skip[i]`` (a reason) leaves text ``i`` unsearched."""
        progress = progress or Progress()
        start = time.perf_counter()
        cfg = self.config
        labels = self.oracle.labels
        wts = [WordText.of(t) for t in texts]
        base = self.oracle.probs(list(texts))
        results, goals = [], []
        for k, (t, wt, p) in enumerate(zip(texts, wts, base, strict=True)):
            goal, why = make_goal(p, labels, cfg.target, cfg.margin)
            if skip is not None and skip[k]:
                why = skip[k]
            if why is None and sum(wt.is_editable(i) for i in range(len(wt))) < 1:
                why = "no word to edit (only punctuation or numbers)"
            results.append(_empty_result(t, labels, p, goal, why))
            goals.append(goal)
        todo = [i for i, r in enumerate(results) if r.skipped is None]
        scores = self._attributions([texts[i] for i in todo], progress)
        for i, s in zip(todo, scores, strict=True):
            results[i].attribution = list(zip(wts[i].words, s, strict=False))
            ranked = [j for j in np.argsort(-np.asarray(s), kind="stable") if wts[i].is_editable(j)]
            results[i].positions = [int(j) for j in ranked[: cfg.positions]]
            results[i].queries = len(wts[i])  # occlusion asked one query per word
        cands = self._candidates([(wts[i], results[i], goals[i]) for i in todo], progress)
        counters = {i: QueryCounter(max(cfg.max_queries - results[i].queries, 0)) for i in todo}
        searches = [
            edit_search(wts[i], goals[i], c, cfg, counters[i])
            for i, c in zip(todo, cands, strict=True)
        ]
        with progress.stage_of("searching counterfactuals", len(searches)):
            found = drive(searches, {"probs": self.oracle.handler()}, progress)
        for i, successes in zip(todo, found, strict=True):
            r = results[i]
            r.queries += counters[i].used
            for state, p in select_diverse(successes, cfg.n, goals[i]):
                edited = wts[i].apply(state)
                r.counterfactuals.append(
                    Counterfactual(
                        edited.text,
                        list(edited.edits),
                        edited.spans,
                        labels[int(np.argmax(p))],
                        _probs(labels, p),
                        word_edit_distance(wts[i].words, WordText.of(edited.text).words),
                    )
                )
            r.success = bool(r.counterfactuals)
        self._quality(results, progress)
        per_text = (time.perf_counter() - start) / max(len(texts), 1)
        for r in results:
            r.seconds = per_text
        return results

    # ----------------------------------------------------------------------------- steps
    def _attributions(self, texts: list[str], progress: Progress) -> list[list[float]]:
        """Occlusion scores of each word for the predicted label's probability."""
        from explainlm.methods import get_method

        if not texts:
            return []
        with progress.stage_of("occlusion attributions", 1):
            engine = self.oracle.engine
            items = engine.prepare(texts)
            exps = get_method("occlusion").attribute(engine, items, "word")
            progress.advance(1)
        return [list(e.word_scores) for e in exps]

    def _candidates(
        self, jobs: list[tuple[WordText, CounterfactualResult, Goal]], progress: Progress
    ) -> list[dict[int, list[Edit]]]:
        """Replacement edits per position for every text (each source batched over all texts)."""
        cfg = self.config
        slots, owner = [], []
        for k, (wt, r, goal) in enumerate(jobs):
            for pos in r.positions:
                slots.append(Slot(wt, pos, self.oracle.labels[goal.toward]))
                owner.append(k)
        per_source: dict[str, list[list[str]]] = {}
        with progress.stage_of("candidate words", len(cfg.sources)):
            for src in cfg.sources:
                if src != "delete" and slots:
                    per_source[src] = self.candidates[src].candidates(slots, cfg.per_source)
                progress.advance(1)
        out: list[dict[int, list[Edit]]] = [{} for _ in jobs]
        # a label's own name ("negative") flips a classifier without saying anything about the text
        banned = {lab.lower() for lab in self.oracle.labels}
        for j, (slot, k) in enumerate(zip(slots, owner, strict=True)):
            original = slot.text.words[slot.index]
            lists = [
                [(w, src) for w in per_source[src][j]] for src in cfg.sources if src != "delete"
            ]
            merged: dict[str, Edit] = {}
            for rank in range(cfg.per_source):  # interleave the sources: each gets its best in
                for lst in lists:
                    word = lst[rank][0].lower() if rank < len(lst) else ""
                    if word and word not in merged and word not in banned:
                        w, src = lst[rank]
                        merged[w.lower()] = Edit(slot.index, original, w, src)
            if "delete" in cfg.sources:
                merged[""] = Edit(slot.index, original, "", "delete")
            out[k][slot.index] = list(merged.values())
        return out

    def _quality(self, results: list[CounterfactualResult], progress: Progress) -> None:
        cfs = [(r, c) for r in results for c in r.counterfactuals]
        if not cfs:
            return
        with progress.stage_of("fluency and similarity", 2):
            if self.lm is not None:
                originals = [r for r in results if r.counterfactuals]
                ppl = self.lm.perplexity([r.text for r in originals] + [c.text for _, c in cfs])
                for r, v in zip(originals, ppl[: len(originals)], strict=True):
                    r.perplexity = float(v)
                for (_, c), v in zip(cfs, ppl[len(originals) :], strict=True):
                    c.perplexity = float(v)
            progress.advance(1)
            if self.similarity is not None:
                sims = self.similarity.similarity(
                    [r.text for r, _ in cfs], [c.text for _, c in cfs]
                )
                for (_, c), v in zip(cfs, sims, strict=True):
                    c.similarity = float(v)
            progress.advance(1)


def _probs(labels: Sequence[str], p: np.ndarray) -> dict[str, float]:
    return {lab: float(v) for lab, v in zip(labels, p, strict=True)}


def _empty_result(
    text: str, labels: Sequence[str], p: np.ndarray, goal: Goal, skipped: str | None
) -> CounterfactualResult:
    return CounterfactualResult(
        text, labels[goal.original], _probs(labels, p), goal.describe(labels), skipped=skipped
    )
