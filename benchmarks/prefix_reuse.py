"""Prefix KV reuse against full forwards for zero-shot occlusion, per precision (issue 20).

Occlusion of SmolLM2 as a zero-shot classifier on SST-2 sentences, in interleaved rounds: fp32 and
bf16 (weights), each with prefix reuse forced (a plan whose per-pass overhead is 0) and with full
forwards forced (an overhead too large for reuse ever to pay), and ``auto`` (the measured plan and
its own choice). Then the time of a one-row pass (8 tokens) and of larger ones, per precision: the
fixed cost of a pass that decides which way pays (docs/performance.md).

    OMP_NUM_THREADS=2 python benchmarks/prefix_reuse.py --n 4 --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import Contender, format_table, interleave  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "test.tsv"
NEVER = 1e12  # an overhead no reuse plan can beat: full forwards


def pass_times(clf, sizes: list[tuple[int, int]]) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Best of 5 wall times (ms) of one forward pass of ``rows × tokens`` synthetic tokens."""
    from explainlm.models import autotune

    out: dict[str, dict[str, float]] = {}
    seq_len = autotune.SEQ_LEN
    for cand in ("fp32", "bf16-weights"):
        out[cand] = {}
        for rows, seq in sizes:
            autotune.SEQ_LEN = seq
            fn = autotune._pass_fn(clf, cand, False, rows)
            fn()
            times = []
            for _ in range(5):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            out[cand][f"{rows}x{seq}"] = 1000 * min(times)
    autotune.SEQ_LEN = seq_len
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4, help="SST-2 test sentences")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from explainlm import explain
    from explainlm.models import load_model
    from explainlm.models.precision import PrecisionPlan

    with DATA.open(encoding="utf-8") as fh:
        texts = [r["sentence"] for r in csv.DictReader(fh, delimiter="\t")][: args.n]
    clf = load_model("smollm2-135m", device="cpu")

    def run(precision: object):  # noqa: ANN202
        return lambda: explain(texts, clf, ["occlusion"], precision=precision, check=False)

    contenders = [Contender("auto", run("auto"), len(texts))]
    for kind in ("fp32", "bf16"):
        for name, overhead in (("reuse", 0.0), ("full forwards", NEVER)):
            plan = PrecisionPlan(kind, kind, "weights", kind, pass_overhead_tokens=overhead)
            contenders.append(Contender(f"{kind} {name}", run(plan), len(texts)))
    res = interleave(contenders, args.rounds)
    pairs = [(c.name, "fp32 reuse") for c in contenders if c.name != "fp32 reuse"]
    doc = res.to_doc(pairs)
    doc["pass_ms"] = pass_times(clf, [(1, 8), (4, 16), (16, 16), (64, 32)])
    print(format_table(doc))
    print("one forward pass, best of 5 (ms):", json.dumps(doc["pass_ms"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
