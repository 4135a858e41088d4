"""Speed of a variant against its reference, measured in interleaved rounds.

Each round times the reference and the variant on the same texts, alternating which goes first
(A B, B A, …) so that load changes on a shared machine hit both alike. Two workloads per round:

* ``batch``: ``predict`` on all timing texts at once (throughput, texts per second);
* ``single``: ``predict`` on each text alone (latency, seconds per text).

Reported: the median of the per-round ratios variant / reference (below 1: the variant is faster)
with their min and max, the median throughput and latency of each, and the load average
(``os.getloadavg()``) before and after. One untimed warm-up call per model comes first.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

LATENCY_TEXTS = 4


def _timed(task: Any, texts: Sequence[str]) -> float:
    start = time.perf_counter()
    task.predict(list(texts))
    return time.perf_counter() - start


def _timed_single(task: Any, texts: Sequence[str]) -> float:
    start = time.perf_counter()
    for t in texts:
        task.predict([t])
    return (time.perf_counter() - start) / max(len(texts), 1)


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def interleaved_timing(
    reference: Any, variant: Any, texts: Sequence[str], *, rounds: int = 5
) -> dict[str, Any]:
    """Time ``variant`` against ``reference`` on ``texts`` (see the module docstring)."""
    if not texts or rounds < 1:
        return {}
    load_before = os.getloadavg()
    single = list(texts[:LATENCY_TEXTS])
    for task in (reference, variant):  # warm-up: lazy initialisation, allocator, caches
        task.predict(list(texts[:2]))
    batch: dict[str, list[float]] = {"reference": [], "variant": []}
    lat: dict[str, list[float]] = {"reference": [], "variant": []}
    for r in range(rounds):
        order = [("reference", reference), ("variant", variant)]
        if r % 2:
            order.reverse()
        for name, task in order:
            batch[name].append(_timed(task, texts))
            lat[name].append(_timed_single(task, single))
    n = len(texts)
    return {
        "rounds": rounds,
        "texts": n,
        "batch_ratio": _spread(
            [v / r for v, r in zip(batch["variant"], batch["reference"], strict=True)]
        ),
        "latency_ratio": _spread(
            [v / r for v, r in zip(lat["variant"], lat["reference"], strict=True)]
        ),
        "reference_texts_per_s": n / statistics.median(batch["reference"]),
        "variant_texts_per_s": n / statistics.median(batch["variant"]),
        "reference_latency_s": statistics.median(lat["reference"]),
        "variant_latency_s": statistics.median(lat["variant"]),
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
    }
