"""Interleaved rounds: the one way every throughput benchmark compares contenders.

On a shared, loaded machine, timing each tool once, one after the other, compares the load at two
moments, not the tools. Here every round runs every contender once, in turn (A B C, A B C, …,
after one warm-up call each), and a comparison is the **median of the per-round ratios** with
their min/max: load that changes slowly cancels within a round. Every result carries the 1-minute
load average before each call, the CPU (model name and the flags that decide bf16/int8 speed),
the torch thread count and the date.

    from rounds import Contender, interleave, machine_info
    res = interleave([Contender("ours", f, units=16), Contender("captum", g, units=16)], rounds=5)
    res.ratio("ours", "captum")   # {"median": 2.1, "min": 1.9, "max": 2.3}  (ours' speed / captum's)
    print(json.dumps(res.to_doc(), indent=1))

Audit and Ray benchmarks use the same helper (``--rounds``); ``ab_rounds.py`` does the same across
source trees (one process per call).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ("amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in FLAGS if f in have]
    except OSError:
        pass
    return []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict[str, Any]:
    """What every recorded number needs beside it."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "nice": os.nice(0),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    except ImportError:  # pragma: no cover
        pass
    return info


@dataclass
class Contender:
    """One thing timed: ``fn()`` does ``units`` pieces of work (explanations, tokens, texts)."""

    name: str
    fn: Callable[[], Any]
    units: int = 1
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rounds:
    """Per-round seconds of each contender, the load before each call, the last outputs."""

    names: list[str]
    units: dict[str, int]
    seconds: dict[str, list[float]]
    loads: list[float]
    outputs: dict[str, Any]
    meta: dict[str, dict[str, Any]]

    def speed(self, name: str) -> dict[str, float]:
        """Units per second: the median over rounds, and the min/max."""
        v = [self.units[name] / s for s in self.seconds[name]]
        return {"median": statistics.median(v), "min": min(v), "max": max(v)}

    def ratio(self, a: str, b: str) -> dict[str, float]:
        """``a``'s speed over ``b``'s, per round: median, min, max (> 1: ``a`` is faster)."""
        ra = [
            (self.units[a] / sa) / (self.units[b] / sb)
            for sa, sb in zip(self.seconds[a], self.seconds[b], strict=True)
        ]
        return {"median": statistics.median(ra), "min": min(ra), "max": max(ra)}

    def to_doc(self, ratios: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        return {
            "machine": machine_info(),
            "rounds": len(self.seconds[self.names[0]]),
            "load_average_1min": {
                "min": min(self.loads),
                "median": statistics.median(self.loads),
                "max": max(self.loads),
            },
            "contenders": [
                {
                    "name": n,
                    "units": self.units[n],
                    "seconds": [round(s, 3) for s in self.seconds[n]],
                    "units_per_second": self.speed(n),
                    **self.meta.get(n, {}),
                }
                for n in self.names
            ],
            "ratios": [{"a": a, "b": b, **self.ratio(a, b)} for a, b in ratios],
        }


def log(msg: str) -> None:
    print(f"[rounds] {msg}", file=sys.stderr, flush=True)


def interleave(contenders: Sequence[Contender], rounds: int = 3, *, warmup: bool = True) -> Rounds:
    """Run every contender once per round, in turn, ``rounds`` times (after a warm-up call each)."""
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ValueError("contender names must be distinct")
    seconds: dict[str, list[float]] = {n: [] for n in names}
    outputs: dict[str, Any] = {}
    loads: list[float] = []
    if warmup:
        for c in contenders:
            log(f"warm-up {c.name}")
            c.fn()
    for r in range(rounds):
        # rotate the order each round so no contender always runs right after the same one
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for c in order:
            loads.append(os.getloadavg()[0])
            start = time.perf_counter()
            outputs[c.name] = c.fn()
            seconds[c.name].append(time.perf_counter() - start)
            log(f"round {r + 1} {c.name}: {seconds[c.name][-1]:.2f} s (load {loads[-1]:.1f})")
    return Rounds(
        names,
        {c.name: c.units for c in contenders},
        seconds,
        loads,
        outputs,
        {c.name: c.meta for c in contenders},
    )


def format_table(doc: dict[str, Any]) -> str:
    """A Markdown table of a :meth:`Rounds.to_doc` document (for RESULTS.md)."""
    m = doc["machine"]
    load = doc["load_average_1min"]
    lines = [
        f"{m['cpu']}; flags {' '.join(m['cpu_flags']) or 'none'}; {m['cpu_count']} CPUs, torch "
        f"threads {m.get('torch_threads')}; {doc['rounds']} interleaved rounds; load average "
        f"(1 min) {load['min']:.1f}–{load['max']:.1f} (median {load['median']:.1f}); {m['date']}",
        "",
        "| contender | units | units/s median (min–max) |",
        "| --- | ---: | --- |",
    ]
    for c in doc["contenders"]:
        s = c["units_per_second"]
        lines.append(
            f"| {c['name']} | {c['units']} | {s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f}) |"
        )
    if doc["ratios"]:
        lines += ["", "| ratio (per round) | median | min | max |", "| --- | ---: | ---: | ---: |"]
        for r in doc["ratios"]:
            lines.append(
                f"| {r['a']} / {r['b']} | {r['median']:.2f}× | {r['min']:.2f}× | {r['max']:.2f}× |"
            )
    return "\n".join(lines)
