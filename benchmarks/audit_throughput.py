"""CrowS-Pairs scoring throughput: explainlm's batched engine vs a plain per-sentence HF loop.

Both compute the same thing, the log-probability of every sentence after the start token:

* explainlm: :class:`explainlm.audits.lm_scoring.TextScorer` (engine passes under a token budget,
  the second sentence of a pair reusing the first one's KV cache up to their first difference);
* baseline: for each sentence, one ``model(ids)`` forward, ``log_softmax``, gather, sum.

Rounds on a subset alternate the two (A B A B ...) and report the median of per-round speed-ups
with the min/max spread and the load average; the log-probs are checked to agree. Then the full
1,508 pairs are scored once by explainlm (the issue's bar: under 10 minutes on this CPU).

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python benchmarks/audit_throughput.py --subset 96 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch


def plain_loop(model, tok, start: int, sentences: list[str]) -> list[float]:
    out = []
    with torch.inference_mode():
        for s in sentences:
            ids = [start] + tok(s, add_special_tokens=False)["input_ids"]
            logits = model(torch.tensor([ids])).logits[0].float()
            lp = torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None])
            out.append(float(lp.sum()))
    return out


def engine_scores(scorer, pairs) -> list[float]:
    res = scorer.score_groups([[p.sent_more, p.sent_less] for p in pairs])
    return [s.logprob for g in res for s in g]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--subset", type=int, default=96, help="pairs per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-batch-tokens", type=int, default=4096)
    ap.add_argument("--no-full", action="store_true", help="skip the full 1,508-pair run")
    args = ap.parse_args()

    from explainlm.audits.lm_bias import pairs_task, summarise
    from explainlm.audits.lm_scoring import TextScorer, load_language_model, start_token
    from explainlm.datasets.fairness import load_crows_pairs

    print(
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    wrapper = load_language_model(args.model)
    model, tok = wrapper.model, wrapper.tokenizer
    start = start_token(tok)
    scorer = TextScorer(wrapper, max_batch_tokens=args.max_batch_tokens)
    pairs = load_crows_pairs()
    rng = np.random.default_rng(0)
    sub = [pairs[i] for i in sorted(rng.choice(len(pairs), args.subset, replace=False))]
    sentences = [s for p in sub for s in (p.sent_more, p.sent_less)]
    engine_scores(scorer, sub[:4])  # warm-up
    plain_loop(model, tok, start, sentences[:4])
    ratios, t_engine, t_plain = [], [], []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        a = engine_scores(scorer, sub)
        t1 = time.perf_counter()
        b = plain_loop(model, tok, start, sentences)
        t2 = time.perf_counter()
        diff = float(np.max(np.abs(np.array(a) - np.array(b))))
        t_engine.append(t1 - t0)
        t_plain.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
        print(
            f"round {r + 1}: explainlm {t1 - t0:.1f} s, plain HF loop {t2 - t1:.1f} s, "
            f"speed-up {ratios[-1]:.2f}x, max |log-prob difference| {diff:.2e}, "
            f"load {os.getloadavg()[0]:.1f}"
        )
    print(
        f"subset of {len(sub)} pairs ({len(sentences)} sentences), {args.rounds} interleaved rounds: "
        f"median speed-up {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
        f"max {max(ratios):.2f}); median explainlm {statistics.median(t_engine):.1f} s, plain "
        f"{statistics.median(t_plain):.1f} s; load average {os.getloadavg()}"
    )
    if args.no_full:
        return
    passes0 = scorer.passes
    t0 = time.perf_counter()
    task = pairs_task(pairs, "crows-pairs")
    res = scorer.score_groups(task.groups)
    elapsed = time.perf_counter() - t0
    payloads = [{"logprob": [s.logprob for s in g]} for g in res]
    overall = summarise(task, payloads)["by_bias_type"][0]
    print(
        f"full CrowS-Pairs: {len(pairs)} pairs in {elapsed:.1f} s ({elapsed / 60:.2f} min, "
        f"{scorer.passes - passes0} passes), {100 * overall['metric']:.1f}% prefer the more "
        f"stereotyping sentence; projected plain loop "
        f"{statistics.median(t_plain) / len(sub) * len(pairs):.0f} s; load {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
