"""Zero-shot SST-2 accuracy of a causal LM used as a classifier (prints measured numbers).

python benchmarks/zero_shot_accuracy.py                       # smollm2-135m, default template
python benchmarks/zero_shot_accuracy.py --calibrate --limit 200
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from explainlm.datasets import read_table
from explainlm.models import load_model
from explainlm.paths import data_dir

SST2_LABELS = {"0": "negative", "1": "positive"}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument(
        "--template", default=None, help="prompt template with {text} (default: the built-in one)"
    )
    ap.add_argument("--calibrate", action="store_true", help="contextual calibration")
    ap.add_argument("--chat", action="store_true", help="wrap prompts in the chat template")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    table = read_table(
        data_dir(args.data_dir) / "sst2" / "test.tsv",
        text_column="sentence",
        label_column="label",
        limit=args.limit,
    )
    options = {"calibrate": args.calibrate, "chat": args.chat}
    if args.template:
        options["template"] = args.template.replace("\\n", "\n")
    clf = load_model(args.model, "zero_shot", **options)
    start = time.perf_counter()
    preds = clf.predict(table.texts)
    seconds = time.perf_counter() - start
    gold = [SST2_LABELS[g] for g in table.labels]
    correct = sum(p.label == g for p, g in zip(preds, gold, strict=True))
    result = {
        "model": args.model,
        "template": clf.template,
        "calibrated": clf.calibrated,
        "chat": args.chat,
        "n": len(gold),
        "accuracy": correct / len(gold),
        "predicted_positive": sum(p.label == "positive" for p in preds),
        "seconds": round(seconds, 1),
        "device": str(clf.wrapper.device),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>20}: {v}")


if __name__ == "__main__":
    main()
