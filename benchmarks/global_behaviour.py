"""Throughput of dataset-level importance (occlusion) and the time to fit the global surrogates.

1. Dataset-level importance over ``--n`` SST-2 sentences with occlusion, through the service (no run
   store, so only the work is timed): texts/s, model evaluations/s, forward passes.
2. On a ``--peer-n`` subset, interleaved rounds (A B C A B C …) against two hand-written loops over
   the same model: (B) one forward per reduced text (batch of 1), (C) one batch per text holding all
   its reduced texts. Reported: the median over rounds of the per-round time ratio, with min/max,
   and the largest score difference (all three compute the same leave-one-out scores).
3. Fitting the surrogates (tree and L1 logistic, with their complexity–fidelity curves) on the
   model's predictions of the ``--n`` sentences.

Usage: ``OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python benchmarks/global_behaviour.py``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import numpy as np
import torch


def naive_scores(clf, text: str, batched: bool) -> tuple[str, np.ndarray]:
    """Leave-one-out by hand: one forward per reduced text (batch of 1), or one batch per text."""
    from explainlm.models.words import remove_words, split_words

    def probs(texts: list[str]) -> np.ndarray:
        encodings = clf.encode(texts, allow_empty=True)  # a one-word text becomes empty
        return torch.softmax(clf.scores(encodings), -1).numpy()

    spans = split_words(text)
    full = probs([text])[0]
    label = int(full.argmax())
    reduced = [
        remove_words(text, spans, [k != j for k in range(len(spans))]) for j in range(len(spans))
    ]
    if batched:
        rest = probs(reduced)[:, label]
    else:
        rest = np.array([probs([r])[0, label] for r in reduced])
    return clf.labels[label], full[label] - rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/work/models/minilm-sst2")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--peer-n", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from explainlm import explain
    from explainlm.behaviour.surrogate import fit_surrogates
    from explainlm.datasets import load_dataset
    from explainlm.models import load_model
    from explainlm.models.words import split_words
    from explainlm.services import behaviour as svc
    from explainlm.services.base import ServiceContext, build_request

    out: dict = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": f"CPU ({os.cpu_count()} cores), torch {torch.__version__}, {torch.get_num_threads()} threads",
        "python": platform.python_version(),
        "model": args.model,
        "load_before": os.getloadavg(),
    }
    clf = load_model(args.model, device="cpu")
    examples = load_dataset("sst2", split=args.split, limit=args.n)
    texts = [e.text for e in examples]
    evals = sum(len(split_words(t)) + 1 for t in texts)

    # 1. dataset-level importance through the service, no store
    req = build_request(
        svc.ImportanceRequest,
        model=args.model,
        dataset="sst2",
        split=args.split,
        limit=args.n,
        check_faithfulness=0,
        chunk_size=64,
    )

    class One:
        def task(self, name, task=None, **kw):
            return clf

        def lock(self, name):
            from contextlib import nullcontext

            return nullcontext()

    tic = time.perf_counter()
    imp = svc.run(req, ServiceContext(store=None, models=One()))
    secs = time.perf_counter() - tic
    out["importance"] = imp_doc = {
        "texts": len(texts),
        "seconds": round(secs, 1),
        "texts_per_s": round(len(texts) / secs, 2),
        "model_evaluations": evals,
        "evaluations_per_s": round(evals / secs, 1),
        "features_in_table": len(imp.table),
    }
    if not args.json:
        print(f"importance: {imp_doc}", flush=True)

    # 2. interleaved rounds against hand-written loops on a subset
    sub = texts[: args.peer_n]
    explain(sub[:2], clf, ["occlusion"])  # warm-up
    times: dict[str, list[float]] = {"explainlm": [], "loop_batch1": [], "loop_per_text": []}
    diff = 0.0
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ours = explain(sub, clf, ["occlusion"])
        times["explainlm"].append(time.perf_counter() - t0)
        for name, batched in (("loop_batch1", False), ("loop_per_text", True)):
            t0 = time.perf_counter()
            theirs = [naive_scores(clf, t, batched) for t in sub]
            times[name].append(time.perf_counter() - t0)
            diff = max(
                diff,
                max(
                    float(np.max(np.abs(np.array(e.word_scores) - s)))
                    for e, (_, s) in zip(ours, theirs, strict=True)
                ),
            )
    ratios = {}
    for name in ("loop_batch1", "loop_per_text"):
        r = [b / a for a, b in zip(times["explainlm"], times[name], strict=True)]
        ratios[name] = {
            "median": round(statistics.median(r), 2),
            "min": round(min(r), 2),
            "max": round(max(r), 2),
        }
    out["peers"] = {
        "texts": len(sub),
        "rounds": args.rounds,
        "seconds_median": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "speedup_of_explainlm": ratios,
        "max_score_difference": diff,
    }

    # 3. surrogates on the model's predictions
    preds = [r.label for r in [p for p in clf.predict(texts)]]
    gold = [e.label for e in examples]
    fits = {}
    for kind in ("tree", "logistic"):
        t0 = time.perf_counter()
        rep = fit_surrogates(texts, preds, gold, kinds=(kind,), n_boot=1000)[0]
        fits[kind] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "curve_points": len(rep.curve),
            "fidelity": round(rep.fidelity["value"], 3),
        }
    out["surrogates"] = fits
    out["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{out['date']} · {out['device']} · load {out['load_before']} → {out['load_after']}")
    i = out["importance"]
    print(
        f"importance: {i['texts']} texts in {i['seconds']} s = {i['texts_per_s']} texts/s, "
        f"{i['evaluations_per_s']} model evaluations/s ({i['model_evaluations']} evaluations)"
    )
    p = out["peers"]
    print(
        f"peers on {p['texts']} texts, {p['rounds']} interleaved rounds: median seconds {p['seconds_median']}"
    )
    for k, r in p["speedup_of_explainlm"].items():
        print(f"  explainlm vs {k}: {r['median']}x (min {r['min']}, max {r['max']})")
    print(f"  largest score difference: {p['max_score_difference']:.2e}")
    for k, f in out["surrogates"].items():
        print(
            f"surrogate {k}: fitted with its curve ({f['curve_points']} models) in {f['seconds']} s, fidelity {f['fidelity']}"
        )


if __name__ == "__main__":
    main()
