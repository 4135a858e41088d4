"""The beam search for one text's anchor (see :mod:`explainlm.whatif.anchors` for the definitions).

Anchors grow one word at a time. At each size, KL-LUCB (:mod:`explainlm.whatif.kl_lucb`) races the
candidates to find the ``beam_size`` most precise, each of those is sampled until its KL confidence
interval decides whether precision ≥ ``threshold``, and the first size with a passing candidate
returns the one with the highest lower bound. The search is a generator: it yields
``("probs", texts)`` requests and receives the model's probabilities
(:func:`~explainlm.whatif.oracle.drive` runs many searches in lock-step). :class:`Samples` keeps
every labelled sample, reused for each candidate whose words it kept.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from explainlm.whatif.kl_lucb import exploration_rate, interval, lucb_pair
from explainlm.whatif.oracle import QueryCounter
from explainlm.whatif.text import WordText

if TYPE_CHECKING:
    from explainlm.whatif.anchors import AnchorConfig, Perturbation

Draws = Sequence[tuple[tuple[int, ...], int]]


class Samples:
    """Every labelled sample drawn so far, and the running statistics of the current arms."""

    def __init__(self, d: int) -> None:
        self.d = d
        self.history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (cond, present, ok)
        self.arms = np.zeros((0, d), dtype=bool)
        self.n = np.zeros(0)
        self.pos = np.zeros(0)

    def set_arms(self, arms: Sequence[tuple[int, ...]]) -> None:
        self.arms = np.zeros((len(arms), self.d), dtype=bool)
        for k, a in enumerate(arms):
            self.arms[k, list(a)] = True
        self.n = np.zeros(len(arms))
        self.pos = np.zeros(len(arms))
        for cond, present, ok in self.history:
            self._count(cond, present, ok)

    def add(self, cond: np.ndarray, present: np.ndarray, ok: np.ndarray) -> None:
        self.history.append((cond, present, ok))
        self._count(cond, present, ok)

    def _count(self, cond: np.ndarray, present: np.ndarray, ok: np.ndarray) -> None:
        if not len(self.arms) or not len(present):
            return
        usable = ~(cond[None, :] & ~self.arms).any(1)  # conditioned on a subset of the arm
        holds = ~(self.arms[:, None, :] & ~present[None, :, :]).any(-1)  # [arms, samples]
        holds &= usable[:, None]
        self.n += holds.sum(1)
        self.pos += (holds & ok[None, :]).sum(1)


class _Search:
    """The state of one text's search: its samples, example texts, and the query budget."""

    def __init__(
        self,
        wt: WordText,
        label_idx: int,
        sampler: Perturbation,
        cfg: AnchorConfig,
        counter: QueryCounter,
        rng: np.random.Generator,
    ) -> None:
        self.d = len(wt)
        self.label_idx, self.sampler, self.cfg, self.counter, self.rng = (
            label_idx, sampler, cfg, counter, rng,
        )  # fmt: skip
        self.store = Samples(self.d)
        self.examples: dict[tuple[int, ...], tuple[list[str], list[str]]] = {}

    def draw(self, requests: Draws) -> Generator[Any, Any, bool]:
        """Sample for several anchors in one request; False when the budget is spent."""
        batches = []
        for anchor, m in requests:
            texts, present = self.sampler.sample(anchor, m, self.rng)
            batches.append((anchor, texts, present))
        wanted = [t for _, texts, _ in batches for t in texts]
        allowed = set(self.counter.admit(wanted))
        asked = [t for t in dict.fromkeys(wanted) if t in allowed]
        if not asked:
            return False
        probs = yield ("probs", asked)
        label_of = {t: int(np.argmax(p)) for t, p in zip(asked, probs, strict=True)}
        for anchor, texts, present in batches:
            keep = np.array([t in label_of for t in texts], dtype=bool)
            ok = np.array([label_of.get(t, -1) == self.label_idx for t in texts], dtype=bool)
            cond = np.zeros(self.d, dtype=bool)
            cond[list(anchor)] = True
            self.store.add(cond, present[keep], ok[keep])
            kept, changed = self.examples.setdefault(anchor, ([], []))
            for t, good in zip(np.asarray(texts)[keep], ok[keep], strict=True):
                bucket = kept if good else changed
                if len(bucket) < 3:
                    bucket.append(str(t))
        return len(asked) == len(set(wanted))

    def stats(self, k: int, beta: float) -> tuple[float, float, float]:
        return interval(self.store.pos[k], self.store.n[k], beta)

    def empty_anchor_holds(self) -> Generator[Any, Any, bool]:
        """Does the prediction hold whatever the words (the empty anchor passes)?"""
        cfg = self.cfg
        self.store.set_arms([()])
        yield from self.draw([((), cfg.batch_size)])
        beta0 = math.log(1 / cfg.delta)
        while True:
            mean, lb, _ = self.stats(0, beta0)
            if not (mean >= cfg.threshold and lb < cfg.threshold - cfg.epsilon_stop):
                break
            if not (yield from self.draw([((), cfg.batch_size)])):
                break
        mean, lb, _ = self.stats(0, beta0)
        return mean >= cfg.threshold and lb > cfg.threshold - cfg.epsilon_stop

    def race(self, arms: list[tuple[int, ...]], top_n: int) -> Generator[Any, Any, list[int]]:
        """KL-LUCB until the ``top_n`` most precise arms are told apart; their positions."""
        t = 1
        while not self.counter.exhausted:
            rate = exploration_rate(len(arms), t, self.cfg.delta)
            ut, lt, gap = lucb_pair(self.store.pos, self.store.n, top_n, rate)
            if gap <= self.cfg.epsilon or ut == lt:
                break
            batch = self.cfg.batch_size
            if not (yield from self.draw([(arms[ut], batch), (arms[lt], batch)])):
                break
            t += 1
        means = self.store.pos / np.maximum(self.store.n, 1)
        return [int(k) for k in np.argsort(-means, kind="stable")[:top_n]]

    def decide(
        self, arms: list[tuple[int, ...]], chosen: list[int], beta: float
    ) -> Generator[Any, Any, None]:
        """Sample the chosen arms until each is known to pass or fail the threshold."""
        cfg = self.cfg
        while not self.counter.exhausted:
            undecided = []
            for k in chosen:
                mean, lb, ub = self.stats(k, beta)
                if (mean >= cfg.threshold and lb < cfg.threshold - cfg.epsilon_stop) or (
                    mean < cfg.threshold and ub >= cfg.threshold + cfg.epsilon_stop
                ):
                    undecided.append((arms[k], cfg.batch_size))
            if not undecided or not (yield from self.draw(undecided)):
                break

    def run(self) -> Generator[Any, Any, dict[str, Any]]:
        cfg, d = self.cfg, self.d
        if (yield from self.empty_anchor_holds()):
            return {"anchor": (), "store": self.store, "examples": self.examples}
        beam: list[tuple[int, ...]] = [()]
        best: tuple[int, ...] | None = None
        tried: list[tuple[float, tuple[int, ...]]] = []
        max_size = min(cfg.max_anchor_size or d, d)
        beta_stop = math.log(1 / (cfg.delta / (1 + (cfg.beam_size - 1) * d)))
        for _size in range(1, max_size + 1):
            arms = sorted({tuple(sorted((*a, f))) for a in beam for f in range(d) if f not in a})
            self.store.set_arms(arms)
            zero = [(arms[k], 1) for k in np.flatnonzero(self.store.n == 0)]
            if zero and not (yield from self.draw(zero)):
                break
            chosen = yield from self.race(arms, min(cfg.beam_size, len(arms)))
            yield from self.decide(arms, chosen, beta_stop)
            passing = []
            for k in chosen:
                mean, lb, _ = self.stats(k, beta_stop)
                tried.append((mean, arms[k]))
                if mean >= cfg.threshold and lb > cfg.threshold - cfg.epsilon_stop:
                    passing.append((lb, arms[k]))
            if passing:
                best = max(passing)[1]
                break
            beam = [arms[k] for k in chosen]
            if self.counter.exhausted:
                break
        found = best is not None
        if best is None:
            best = max(tried)[1] if tried else ()
        return {"anchor": best, "found": found, "store": self.store, "examples": self.examples}


def anchor_search(
    wt: WordText,
    label_idx: int,
    sampler: Perturbation,
    cfg: AnchorConfig,
    counter: QueryCounter,
    rng: np.random.Generator,
) -> Generator[Any, Any, dict[str, Any]]:
    """The beam search for one text (a generator driven by :func:`~explainlm.whatif.oracle.drive`)."""
    return _Search(wt, label_idx, sampler, cfg, counter, rng).run()


def anchor_estimate(
    store: Samples, anchor: tuple[int, ...], delta: float
) -> tuple[float, float, float, int]:
    """(precision, lower, upper, n) of ``anchor`` from every usable sample, at confidence 1 − δ."""
    store.set_arms([anchor])
    mean, lb, ub = interval(store.pos[0], store.n[0], math.log(2 / delta))
    return mean, lb, ub, int(store.n[0])
