"""Interleaved A/B(/C…) rounds of a benchmark script run against different source trees.

Each arm is ``NAME=SRC_DIR`` (optionally ``NAME=SRC_DIR::EXTRA ARGS``): the script runs in a fresh
process with ``PYTHONPATH=SRC_DIR`` (so one virtual environment serves every tree), the JSON document
``--json`` prints read from its stdout (from the first line starting with ``{``). Rounds run the arms in turn (A B A B …); the
report gives, per (tool, method, mode), each arm's median explanations/s and the median of the
per-round ratios to the first arm with their min/max, and the 1-minute load average before each run.

    python benchmarks/ab_rounds.py --rounds 3 --arm main=/tmp/main/src --arm core=src \\
        --arm core+check=src::--check -- benchmarks/attribution_throughput.py --tools explainlm --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any


def run_arm(src: str, extra: list[str], script: list[str], threads: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, *script, *extra]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    text = out.stdout
    return json.loads(text[text.index("\n{") + 1 :] if not text.startswith("{") else text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arm", action="append", required=True, help="NAME=SRC[::EXTRA ARGS]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT ARGS…")
    args = ap.parse_args()
    script = [a for a in args.script if a != "--"]
    arms = []
    for spec in args.arm:
        name, _, rest = spec.partition("=")
        src, _, extra = rest.partition("::")
        arms.append((name, src, extra.split()))
    speeds: dict[str, dict[tuple[str, ...], list[float]]] = {n: {} for n, _, _ in arms}
    loads: list[float] = []
    for r in range(args.rounds):
        for name, src, extra in arms:
            loads.append(os.getloadavg()[0])
            start = time.time()
            doc = run_arm(src, extra, script, args.threads)
            for res in doc["results"]:
                key = (res["tool"], res["method"], res["mode"])
                speeds[name].setdefault(key, []).append(res["explanations_per_second"])
            print(f"round {r + 1} {name}: {time.time() - start:.0f} s", file=sys.stderr)
    base = arms[0][0]
    rows = []
    for key, values in speeds[base].items():
        row: dict[str, Any] = {"tool": key[0], "method": key[1], "mode": key[2]}
        for name, _, _ in arms:
            vs = speeds[name].get(key, [])
            row[name] = statistics.median(vs) if vs else None
            if name != base and vs:
                ratios = [b / a for a, b in zip(values, vs, strict=False)]
                row[f"{name}/{base}"] = {
                    "median": statistics.median(ratios),
                    "min": min(ratios),
                    "max": max(ratios),
                }
        rows.append(row)
    doc = {
        "arms": [{"name": n, "src": s, "extra": e} for n, s, e in arms],
        "rounds": args.rounds,
        "script": script,
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },
        "rows": rows,
    }
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
