"""Model queries for the what-if searches, packed into shared engine passes.

Every search (one counterfactual search, attack or anchor search per text) is a generator that
*yields* requests ``(kind, inputs)`` and receives the answers. :func:`drive` runs many searches in
lock-step: it gathers the requests of all of them, answers each kind in one batched call (e.g. all
edited texts of all searches scored in as few engine passes as the token budget allows), and sends
every search its share. So a dataset of 200 texts costs about as many passes as its longest search
has rounds, not 200 times that.

>>> def search(x):
...     probs = yield ("probs", [x, x + "!"])
...     return len(probs)
>>> drive([search("a"), search("b")], {"probs": lambda texts: [len(t) for t in texts]})
[2, 2]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from explainlm.engine import Engine
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.progress import Progress
from explainlm.targets import ClassTarget

R = TypeVar("R")
Request = tuple[str, Sequence[Any]]
Search = Generator[Request, Any, R]
Handler = Callable[[list[Any]], Sequence[Any]]


def drive(
    searches: Sequence[Search[R]],
    handlers: Mapping[str, Handler],
    progress: Progress | None = None,
) -> list[R]:
    """Run ``searches`` to completion, answering their requests in batches; returns their results.

    ``handlers[kind](inputs)`` answers a flat list of inputs with one output per input. ``progress``
    advances by one per finished search and is checked (cancellation) every round.
    """
    results: list[Any] = [None] * len(searches)
    pending: dict[int, Request] = {}

    def step(i: int, answer: Any, first: bool = False) -> None:
        try:
            req = next(searches[i]) if first else searches[i].send(answer)
        except StopIteration as stop:
            results[i] = stop.value
            if progress is not None:
                progress.advance(1)
            return
        kind, inputs = req
        if kind not in handlers:
            raise ValueError(f"no handler for requests of kind {kind!r}")
        pending[i] = (kind, list(inputs))

    for i in range(len(searches)):
        step(i, None, first=True)
    while pending:
        if progress is not None:
            progress.check()
        current, pending = pending, {}
        by_kind: dict[str, list[int]] = {}
        for i, (kind, _) in current.items():
            by_kind.setdefault(kind, []).append(i)
        for kind, owners in by_kind.items():
            flat = [x for i in owners for x in current[i][1]]
            out = handlers[kind](flat) if flat else []
            at = 0
            for i in owners:
                n = len(current[i][1])
                step(i, out[at : at + n])
                at += n
    return results


class Oracle:
    """Class probabilities of texts from a classifier, through the engine, with a cache.

    ``probs(texts)`` scores the texts it has not seen (duplicates once) in packed engine passes;
    ``evaluated`` counts the texts the model actually ran on. Searches count their own queries
    (the unique texts *they* asked about), so a cache hit still counts as a query for the search,
    as it would against a remote model.
    """

    def __init__(
        self,
        classifier: Any,
        *,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        cache_size: int = 200_000,
    ) -> None:
        self.classifier = classifier
        self.labels: list[str] = list(classifier.labels)
        self.engine = Engine(classifier, ClassTarget("prob"), max_batch_tokens=max_batch_tokens)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.evaluated = 0

    @property
    def passes(self) -> int:
        return self.engine.passes

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), n_labels]`` class probabilities (an empty text is a valid input)."""
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            encodings = self.classifier.encode(missing, allow_empty=True)
            items = self.engine.prepare_encodings(encodings)
            for t, it in zip(missing, items, strict=True):
                self._cache[t] = torch.softmax(it.scores.double(), -1).numpy()
            self.evaluated += len(missing)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, len(self.labels)))
        return np.stack([self._cache[t] for t in texts])

    def handler(self) -> Handler:
        """The ``"probs"`` handler for :func:`drive`."""
        return lambda texts: list(self.probs(texts))


class QueryCounter:
    """The unique texts one search has asked about, under an optional budget.

    >>> q = QueryCounter(budget=3)
    >>> q.admit(["a", "b", "a"]), q.used
    (['a', 'b'], 2)
    >>> q.admit(["c", "d"]), q.used, q.exhausted
    (['c'], 3, True)
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.seen: set[str] = set()

    @property
    def used(self) -> int:
        return len(self.seen)

    @property
    def left(self) -> float:
        return float("inf") if self.budget is None else self.budget - len(self.seen)

    @property
    def exhausted(self) -> bool:
        return self.left <= 0

    def admit(self, texts: Sequence[str]) -> list[str]:
        """The texts (in order, once each) that fit in the budget; already seen ones are free."""
        out: list[str] = []
        for t in dict.fromkeys(texts):
            if t in self.seen:
                out.append(t)
            elif self.left > 0:
                self.seen.add(t)
                out.append(t)
        return out
