"""Integrated gradients with fewer Gauss-Legendre points: completeness error and rank agreement
against 50 points, per sentence (fp32), on the first N SST-2 test sentences.

    OMP_NUM_THREADS=2 EXPLAINLM_PRECISION=fp32 python benchmarks/ig_steps.py smollm2-135m 8
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware_study import sentences  # noqa: E402

from explainlm import explain  # noqa: E402
from explainlm.models import load_model  # noqa: E402

IG = "integrated_gradients"


def run(model: str, n: int, counts: tuple[int, ...] = (8, 12, 16, 24, 32)) -> None:
    clf = load_model(model)
    texts = sentences(n)
    ref = explain(
        texts, clf, [IG], method_params={IG: {"steps": 50}}, precision="fp32", check=False
    )
    print("steps 50 |delta|:", [round(abs(r.delta), 4) for r in ref])
    for steps in counts:
        t = time.perf_counter()
        out = explain(
            texts, clf, [IG], method_params={IG: {"steps": steps}}, precision="fp32", check=False
        )
        dt = time.perf_counter() - t
        d = [abs(o.delta) for o in out]
        rho = [spearmanr(o.token_scores, r.token_scores)[0] for o, r in zip(out, ref, strict=True)]
        worse = sum(a > abs(r.delta) for a, r in zip(d, ref, strict=True))
        print(
            f"steps {steps}: |delta| {[round(x, 4) for x in d]} median {np.median(d):.4f}; "
            f"worse than 50 points on {worse}/{len(d)}; Spearman vs 50 points min "
            f"{min(rho):.4f} median {np.median(rho):.4f}; {dt:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    run(
        sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m",
        int(sys.argv[2]) if len(sys.argv) > 2 else 8,
    )
