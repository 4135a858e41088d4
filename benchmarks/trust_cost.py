"""Cost of the faithful-attribution candidates against integrated gradients with 32 steps.

Every method explains the same sentences (the first ``--texts`` of a dataset, after ``--skip``)
with the same engine, in interleaved rounds: each round runs every method once on all the
sentences (the starting method rotates from round to round), and each method's time is divided by
integrated gradients' time *in the same round*. Reported per method: the median seconds per
explanation with the min-max over rounds, the median of the per-round ratios to IG-32 with their
min-max, and the engine's forward passes per explanation. The load average (``os.getloadavg``) is
printed before and after: on a shared machine the absolute times are upper bounds, the ratios are
what to compare.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/trust_cost.py --texts 4 --rounds 3
    python benchmarks/trust_cost.py --json --methods integrated_gradients,context_cite
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import warnings

import torch

DEFAULT_METHODS = (
    "integrated_gradients",
    "attention_mask_ig",
    "context_cite",
    "context_cite@32",
    "occlusion",
    "contrastive_ig",
    "expected_gradients",
    "sequential_ig",
    "reagent",
)
PARAMS = {
    "integrated_gradients": {"steps": 32},
    "context_cite@32": {"n_samples": 32},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dataset", default="sst-rationales")
    ap.add_argument("--texts", type=int, default=4)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from explainlm.datasets import load_dataset
    from explainlm.engine import Engine
    from explainlm.methods import get_method
    from explainlm.models import load_model

    names = [m for m in args.methods.split(",") if m]
    if "integrated_gradients" not in names:
        names.insert(0, "integrated_gradients")
    load_before = os.getloadavg()
    clf = load_model(args.model)
    data = load_dataset(args.dataset)[args.skip : args.skip + args.texts]
    engine = Engine(clf)
    items = engine.prepare([d.text for d in data])
    methods = {n: get_method(n.split("@")[0], **PARAMS.get(n, {})) for n in names}
    for m in methods.values():  # warm-up, not timed
        m.attribute(engine, items[:1])
    times: dict[str, list[float]] = {n: [] for n in names}
    passes: dict[str, int] = {}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            before = engine.passes
            start = time.perf_counter()
            methods[n].attribute(engine, items)
            times[n].append((time.perf_counter() - start) / len(items))
            passes[n] = engine.passes - before
        if not args.json:  # one line per finished round, so an interrupted run still reports
            line = " ".join(f"{n}={times[n][-1]:.2f}s" for n in names)
            print(f"round {r + 1} ({os.getloadavg()[0]:.1f} load): {line}", flush=True)
    load_after = os.getloadavg()
    ig = times["integrated_gradients"]
    rows = []
    for n in names:
        ratios = [t / b for t, b in zip(times[n], ig, strict=True)]
        rows.append(
            {
                "method": n,
                "params": methods[n].params,
                "seconds_median": statistics.median(times[n]),
                "seconds_min": min(times[n]),
                "seconds_max": max(times[n]),
                "ratio_to_ig32_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "passes_per_call": passes[n],
            }
        )
    doc = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
        "model": args.model,
        "dataset": args.dataset,
        "texts": len(items),
        "tokens": [len(it.encoding) for it in items],
        "words": [len(it.encoding.word_spans) for it in items],
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_before": load_before,
        "load_after": load_after,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(doc, default=str))
        return 0
    print(
        f"{doc['date']}  {args.model} on {len(items)} texts of {args.dataset} "
        f"(tokens {doc['tokens']}, words {doc['words']}), {args.rounds} interleaved rounds, "
        f"{doc['torch_threads']} torch thread(s)"
    )
    print(f"load average before {load_before}, after {load_after}")
    print(f"{'method':22s} {'s/explanation (min-max)':>28s} {'× IG-32 (min-max)':>24s} passes")
    for row in rows:
        print(
            f"{row['method']:22s} {row['seconds_median']:9.2f} ({row['seconds_min']:.2f}-"
            f"{row['seconds_max']:.2f}) {row['ratio_to_ig32_median']:12.2f} "
            f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) {row['passes_per_call']:6d}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
