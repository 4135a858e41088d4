"""Cost of the faithfulness check as a fraction of each method's own time.

For each method, ``explain()`` runs on the same texts with ``check=False`` and ``check=True`` in
interleaved rounds (off, on, off, on, …; the model loaded once, warmed up first). The check's cost
in a round is ``t_on − t_off``; the report gives, per method, the median over rounds of
``(t_on − t_off) / t_off`` with its min/max, the median seconds per text of both, the time the
check itself measured (``check["seconds"]``), and the 1-minute load average. ``--generation`` does
the same for ``explain_generation`` on the built-in LLM (teacher-forced continuations).

    python benchmarks/check_cost.py --model /work/models/minilm-sst2 --n 16 --rounds 3
    python benchmarks/check_cost.py --generation --n 4 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import torch

from explainlm.attribution import explain
from explainlm.datasets import read_table
from explainlm.generation import explain_generation
from explainlm.models import load_model
from explainlm.paths import data_dir

METHODS = "saliency,grad_x_input,integrated_gradients,attention,occlusion,lime,kernel_shap,random"
PARAMS = {"integrated_gradients": {"steps": 50}, "lime": {"n_samples": 1000}}


def log(msg: str) -> None:
    print(f"[check_cost] {msg}", file=sys.stderr, flush=True)


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="/work/models/minilm-sst2")
    ap.add_argument("--generation", action="store_true", help="explain_generation on smollm2-135m")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--continuation-tokens", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    texts = read_table(data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=args.n).texts
    methods = args.methods.split(",")
    if args.generation:
        gen = load_model("smollm2-135m", "generator", chat=False)
        prompts = [f"Review: {t}\nSentiment:" for t in texts]
        conts = [
            g.token_ids for g in gen.generate(prompts, max_new_tokens=args.continuation_tokens)
        ]

        def run(method: str, check: bool, n: int = len(prompts)) -> Any:
            return explain_generation(
                prompts[:n], gen, [method], target_texts=conts[:n], method_params=PARAMS,
                check=check,
            )  # fmt: skip

        model_name = "smollm2-135m (generation)"
    else:
        clf = load_model(args.model)

        def run(method: str, check: bool, n: int = len(texts)) -> Any:
            return explain(texts[:n], clf, [method], method_params=PARAMS, check=check)

        model_name = args.model
    rows = []
    loads = []
    for method in methods:
        run(method, True, 2)  # warm-up
        off, on, own = [], [], []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            t_off, _ = timed(lambda m=method: run(m, False))
            t_on, res = timed(lambda m=method: run(m, True))
            off.append(t_off)
            on.append(t_on)
            own.append(sum(r.check["seconds"] for r in res))
        fractions = [(b - a) / a for a, b in zip(off, on, strict=True)]
        row = {
            "method": method,
            "seconds_per_text_without_check": statistics.median(off) / len(texts),
            "seconds_per_text_with_check": statistics.median(on) / len(texts),
            "check_cost_fraction": {
                "median": statistics.median(fractions),
                "min": min(fractions),
                "max": max(fractions),
            },
            "check_own_seconds_fraction": statistics.median(
                [o / a for o, a in zip(own, off, strict=True)]
            ),
        }
        rows.append(row)
        log(
            f"{method:<22} check +{row['check_cost_fraction']['median']:.1%} "
            f"[{min(fractions):.1%}, {max(fractions):.1%}] of its own time"
        )
    doc = {
        "model": model_name,
        "n_texts": len(texts),
        "rounds": args.rounds,
        "device": f"cpu ({platform.processor() or platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "date": datetime.date.today().isoformat(),
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },
        "rows": rows,
    }
    print(json.dumps(doc, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
