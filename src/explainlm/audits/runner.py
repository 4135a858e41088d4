"""Resumable, chunked per-item work: finished items are kept in a cache (the run store's ``items``).

An audit computes its items in chunks; after each chunk the results are written to the cache, so
an interrupted audit resumes where it stopped and recomputes nothing that was finished.

>>> cache = MemoryCache()
>>> run_chunks(["a", "b", "c"], lambda keys: {k: k.upper() for k in keys}, cache, chunk_size=2)
{'a': 'A', 'b': 'B', 'c': 'C'}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from explainlm.progress import Progress


class ItemCache(Protocol):
    def get(self) -> dict[str, Any]:
        """Every stored item (key → JSON payload)."""
        ...

    def put(self, items: Mapping[str, Any]) -> None:
        """Store finished items (one transaction)."""
        ...


class MemoryCache:
    """An in-memory cache (no run store)."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def get(self) -> dict[str, Any]:
        return dict(self.items)

    def put(self, items: Mapping[str, Any]) -> None:
        self.items.update(items)


class StoreCache:
    """Items of kind ``kind`` of one run in a :class:`~explainlm.store.RunStore`."""

    def __init__(self, store: Any, run_id: str, kind: str) -> None:
        self.store, self.run_id, self.kind = store, run_id, kind

    def get(self) -> dict[str, Any]:
        return dict(self.store.get_items(self.run_id, self.kind))

    def put(self, items: Mapping[str, Any]) -> None:
        from explainlm.audits.stats import clean

        self.store.put_items(self.run_id, self.kind, clean(dict(items)))


def run_chunks(
    keys: Sequence[str],
    compute: Callable[[list[str]], Mapping[str, Any]],
    cache: ItemCache,
    *,
    progress: Progress | None = None,
    chunk_size: int = 64,
    stage: str = "scoring",
    seconds_per_item: float | None = None,
) -> dict[str, Any]:
    """Compute the missing keys chunk by chunk (storing each chunk); return every key's payload."""
    progress = progress or Progress()
    done = cache.get()
    todo = [k for k in keys if k not in done]
    estimate = None if seconds_per_item is None else seconds_per_item * len(todo)
    progress.start(stage, len(keys), estimate_s=estimate)
    if len(keys) - len(todo):
        progress.advance(len(keys) - len(todo))
    try:
        for s in range(0, len(todo), chunk_size):
            part = todo[s : s + chunk_size]
            got = dict(compute(part))
            missing = [k for k in part if k not in got]
            if missing:
                raise RuntimeError(f"chunk computation left out {missing[:3]}")
            cache.put(got)
            done.update(got)
            progress.advance(len(part))
    finally:
        progress.close()
    return {k: done[k] for k in keys}


class PrefixCache:
    """A view of another cache whose keys all start with ``prefix`` (several stages, one run)."""

    def __init__(self, inner: ItemCache, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    def get(self) -> dict[str, Any]:
        n = len(self.prefix)
        return {k[n:]: v for k, v in self.inner.get().items() if k.startswith(self.prefix)}

    def put(self, items: Mapping[str, Any]) -> None:
        self.inner.put({self.prefix + k: v for k, v in items.items()})
