"""Time loading the built-in models (the GGUF de-quantization happens on the first load only).

python benchmarks/model_load.py --repeat 3
"""

from __future__ import annotations

import argparse
import time

from explainlm.models import ModelWrapper
from explainlm.models.sources import BUILTINS


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models", default=",".join(BUILTINS))
    args = ap.parse_args()
    for name in args.models.split(","):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            ModelWrapper.load(name, device="cpu")
            times.append(time.perf_counter() - start)
        print(f"{name}: " + ", ".join(f"{t:.2f}s" for t in times) + f" (best {min(times):.2f}s)")


if __name__ == "__main__":
    main()
