"""Labels under fp32, explicit bf16 and ``auto`` (with its close calls re-predicted in fp32) on the
first N SST-2 test sentences: shows a bf16 label flip and what ``auto`` predicts instead.

    EXPLAINLM_HOME=... OMP_NUM_THREADS=2 python benchmarks/close_calls.py smollm2-135m 4
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware_study import sentences  # noqa: E402

from explainlm.engine import Engine  # noqa: E402
from explainlm.models import load_model  # noqa: E402
from explainlm.models.autotune import resolve_precision  # noqa: E402


def run(model: str, n: int) -> None:
    clf = load_model(model)
    texts = sentences(n)
    plan = resolve_precision("auto", clf)
    print(f"auto plan: forward {plan.forward}, gradients {plan.backward} ({plan.source})")
    for name, precision in (("fp32", "fp32"), ("bf16", "bf16"), ("auto", plan)):
        engine = Engine(clf, precision=precision)
        items = engine.prepare(texts)
        labels = [clf.labels[it.predicted] for it in items]
        probs = [[round(p, 4) for p in torch.softmax(it.scores, -1).tolist()] for it in items]
        print(name, labels, probs, "close calls:", engine.close_calls)


if __name__ == "__main__":
    run(
        sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m",
        int(sys.argv[2]) if len(sys.argv) > 2 else 4,
    )
