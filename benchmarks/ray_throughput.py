"""Ray backend throughput: local backend vs Ray with 1 and 2 actors, interleaved rounds.

One occlusion job (default: 2,000 SST-2 sentences, the fine-tuned MiniLM classifier) is run in
rounds, each round running every configuration once in the same order (local, then each Ray
configuration), so machine load drifts hit them alike. Each job is timed end to end as a user
sees it: input read, actors started and models loaded (Ray), every shard computed, the run store
written, and for Ray the result dataset merged back (``res.load()``). The Ray cluster itself is
started once (``ray.init``), like a cluster that is already running; its start time is reported.

Configurations (on one machine with C cores; default C = 2):

| name | what |
| --- | --- |
| local | the local backend, torch using C threads |
| ray-1xC | 1 actor with C CPUs (C torch threads): the same compute as local, so the ratio is Ray's overhead |
| ray-1 | 1 actor with 1 CPU |
| ray-2 | 2 actors with 1 CPU each (throughput vs actors: ray-2 / ray-1) |

Reported per configuration: median texts/s; per Ray configuration the median of the per-round
ratios of its time to local's, with min and max; the load average around each round. The first
round also checks that every Ray result is identical to the local one. Before the rounds, every
configuration runs once on the first 32 texts (untimed in the table, its seconds reported as the
warm-up): that fills the per-machine precision measurement (``--precision auto`` measures once per
model and thread count) and the import caches, which would otherwise land in round 1 only.

    python benchmarks/ray_throughput.py                       # 2,000 texts, 3 rounds
    python benchmarks/ray_throughput.py --n 500 --rounds 2 --json
    python benchmarks/ray_throughput.py --tiny                # smoke test: tiny random model
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "/work/models/minilm-sst2"


def sentences(path: Path, skip: int, n: int) -> list[str]:
    if not path.is_file():  # e.g. on a GPU machine without the data: generated sentences
        import random

        words = "the a film movie plot acting was is very not good bad great dull funny".split()
        rng = random.Random(0)
        return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 25))) for _ in range(n)]
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    texts = [r["sentence"].strip() for r in rows[skip:] if r["sentence"].strip()]
    while len(texts) < n:  # a short file: repeat it (the numbers say how many distinct)
        texts += texts
    return texts[:n]


def tiny_model(folder: Path) -> str:
    """A 2-layer random BERT with MiniLM's tokenizer (the test suite's tiny model)."""
    from explainlm.models.tiny import build_tiny_bert

    return str(build_tiny_bert(folder))


def configs(cores: int, wanted: list[str], gpus: float) -> dict[str, dict[str, Any]]:
    known = {
        "local": {},
        f"ray-1x{cores}": {"actors": 1, "cpus_per_actor": float(cores)},
        "ray-1": {"actors": 1, "cpus_per_actor": 1.0},
        "ray-2": {"actors": 2, "cpus_per_actor": 1.0},
    }
    out = {k: v for k, v in known.items() if k in wanted or k.split("x")[0] + "x" in wanted}
    for v in out.values():
        if v and gpus:
            v["gpus_per_actor"] = gpus
    return out


def run_one(name: str, cfg: dict[str, Any], req: Any) -> tuple[float, Any, dict[str, Any]]:
    from explainlm.services import explain as explain_service
    from explainlm.services.base import ServiceContext
    from explainlm.services.dataset_jobs import BackendOptions, run
    from explainlm.store import open_store

    ctx = ServiceContext(store=open_store())
    t0 = time.perf_counter()
    if name == "local":
        res = explain_service.run(req, ctx)
        return time.perf_counter() - t0, res.explanations, {}
    job = run(req, ctx, BackendOptions(backend="ray", **cfg))
    merged = job.load().explanations
    wall = time.perf_counter() - t0
    extra = {
        "actor_load_s": [round(a["load_s"], 2) for a in job.actors],
        "job_s": round(job.seconds, 2),
        # outside the shard loop: input read, waiting for the first actor's model (the run's
        # precision plan), run bookkeeping, and merging the result dataset
        "driver_s": round(wall - job.seconds, 2),
    }
    return wall, merged, extra


def same(a: Any, b: Any) -> bool:
    def strip(e: Any) -> dict[str, Any]:
        d = e.to_dict()
        d.pop("seconds")
        if d.get("check"):
            d["check"] = {k: v for k, v in d["check"].items() if k != "seconds"}
        return d

    return len(a) == len(b) and all(strip(x) == strip(y) for x, y in zip(a, b, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/sst2/train.tsv"))
    ap.add_argument(
        "--skip", type=int, default=40000, help="rows of --data skipped (training rows)"
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--method", default="occlusion")
    ap.add_argument("--configs", default="local,ray-1x,ray-1,ray-2")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"])
    ap.add_argument("--gpus-per-actor", type=float, default=0.0)
    ap.add_argument("--tiny", action="store_true", help="smoke test: tiny random model, 128 texts")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    # SIGTERM exits through atexit, where Ray stops the cluster this script started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    os.environ["EXPLAINLM_HOME"] = str(tmp / "home")
    import ray
    import torch

    from explainlm.services import explain as explain_service

    torch.set_num_threads(args.cores)
    if args.tiny:
        model = tiny_model(tmp / "tiny")
    elif Path(args.model).is_dir() or not args.model.startswith("/"):
        model = args.model
    else:  # the fine-tuned folder is absent (a GPU machine): same architecture, fresh head
        sys.path.insert(0, str(Path(__file__).parent))
        from gpu_throughput import classifier_source

        model, _ = classifier_source(args.model, tmp / "clf")
    n = 128 if args.tiny else args.n
    texts = sentences(Path(args.data), args.skip, n)
    data = tmp / "input.csv"
    with open(data, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([t] for t in texts)
    req = explain_service.ExplainRequest(
        input=str(data),
        model=model,
        methods=[args.method],
        device=args.device,
        precision=args.precision,
    )
    t0 = time.perf_counter()
    ray.init(
        num_cpus=args.cores,
        object_store_memory=200 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
    )
    cluster_start = time.perf_counter() - t0
    cfgs = configs(args.cores, args.configs.split(","), args.gpus_per_actor)
    times: dict[str, list[float]] = {k: [] for k in cfgs}
    details: dict[str, list[dict[str, Any]]] = {k: [] for k in cfgs}
    loads, identical = [], {}
    warm = warm_up(cfgs, req, texts[:32], tmp / "warm.csv")
    for r in range(args.rounds):
        before = os.getloadavg()
        reference = None
        for name, cfg in cfgs.items():
            wall, exps, extra = run_one(name, cfg, req)
            times[name].append(wall)
            details[name].append({"s": round(wall, 2), **extra})
            if name == "local":
                reference = exps
            elif r == 0 and reference is not None:
                identical[name] = same(reference, exps)
            print(f"round {r + 1} {name}: {wall:.1f} s {extra}", file=sys.stderr)
        loads.append([round(x, 2) for x in (*before, *os.getloadavg())])
    ray.shutdown()
    report(args, n, len(set(texts)), cluster_start, warm, times, details, loads, identical)


def warm_up(cfgs: dict[str, Any], req: Any, texts: list[str], path: Path) -> dict[str, float]:
    """Run every configuration once on a few texts (precision measurement, imports); seconds."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([t] for t in texts)
    small = req.model_copy(update={"input": str(path)})
    out = {}
    for name, cfg in cfgs.items():
        out[name] = round(run_one(name, cfg, small)[0], 2)
        print(f"warm-up {name} ({len(texts)} texts): {out[name]} s", file=sys.stderr)
    return out


def report(
    args: Any,
    n: int,
    distinct: int,
    cluster_start: float,
    warm: dict[str, float],
    times: Any,
    details: Any,
    loads: Any,
    identical: Any,
) -> None:
    rows = []
    for name, ts in times.items():
        row = {
            "config": name,
            "median_s": round(statistics.median(ts), 2),
            "texts_per_s": round(n / statistics.median(ts), 1),
            "rounds": details[name],
        }
        if name != "local" and "local" in times:
            ratios = [t / base for t, base in zip(ts, times["local"], strict=True)]
            row.update(
                ratio_median=round(statistics.median(ratios), 3),
                ratio_min=round(min(ratios), 3),
                ratio_max=round(max(ratios), 3),
                identical_to_local=identical.get(name),
            )
        rows.append(row)
    doc = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": " ".join(["python", *sys.argv]),
        "model": "tiny" if args.tiny else args.model,
        "method": args.method,
        "n_texts": n,
        "distinct_texts": distinct,
        "ray_cluster_start_s": round(cluster_start, 2),
        "warm_up_s": warm,
        "precision": args.precision,
        "loadavg_per_round_before_after": loads,
        "results": rows,
    }
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"{doc['date']} · {doc['machine']} · {n} texts ({distinct} distinct) · {args.method}")
    print(
        f"ray cluster start (once): {cluster_start:.1f} s; warm-up: {warm}; precision {args.precision}"
    )
    print(f"load avg per round (before, after): {loads}")
    print(f"{'config':<10} {'median s':>9} {'texts/s':>8} {'ratio':>7} {'min':>6} {'max':>6} same")
    for r in rows:
        ratio = [
            f"{r[k]:.3f}" if k in r else "" for k in ("ratio_median", "ratio_min", "ratio_max")
        ]
        print(
            f"{r['config']:<10} {r['median_s']:>9} {r['texts_per_s']:>8} {ratio[0]:>7} "
            f"{ratio[1]:>6} {ratio[2]:>6} {r.get('identical_to_local', '')}"
        )


if __name__ == "__main__":
    main()
