"""A read-only list of results that remembers the run it came from (shared by result sets), and
:func:`json_safe`, which every JSON document of results goes through.

>>> r = ResultList([1, 2], run_id="r1")
>>> len(r), r[1], list(r), r.run_id
(2, 2, [1, 2], 'r1')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class ResultList(Sequence[T], Generic[T]):
    """Results (explanations, generation attributions) plus the id of the run that produced them."""

    def __init__(self, items: Iterable[T] = (), *, run_id: str | None = None) -> None:
        self.items: list[T] = list(items)
        self.run_id = run_id

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        return self.items[i]

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars → Python numbers, NaN/inf → None, tuples → lists.

    >>> json_safe({"a": float("nan"), "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    try:
        f = float(obj)
    except (TypeError, ValueError):
        return str(obj)
    if not math.isfinite(f):
        return None
    return int(f) if type(obj).__name__.startswith(("int", "uint")) else f


def text_major(results: Sequence[T], n_texts: int, n_methods: int) -> list[T]:
    """Method-major results (method 0 on every text, method 1 on every text, …) in text-major
    order (text 0 with every method, text 1 with every method, …): the order of every result set.

    >>> text_major(["a0", "a1", "b0", "b1"], n_texts=2, n_methods=2)
    ['a0', 'b0', 'a1', 'b1']
    """
    if len(results) != n_texts * n_methods:
        raise ValueError(f"{len(results)} results for {n_texts} texts × {n_methods} methods")
    return [results[m * n_texts + i] for i in range(n_texts) for m in range(n_methods)]
