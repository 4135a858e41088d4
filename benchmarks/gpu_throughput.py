"""Explanations per second on one device, against the GPU targets of issue 17.

| workload | model | method | target (GPU) |
| --- | --- | --- | --- |
| minilm_ig | MiniLM classifier (models/minilm-sst2) | integrated_gradients (50 steps) | ≥ 2,000/s |
| minilm_occlusion | MiniLM classifier | occlusion (one word at a time) | ≥ 5,000/s |
| llm_occlusion | smollm2-135m, zero-shot negative/positive | occlusion | ≥ 100/s |
| llm_ig | smollm2-135m, zero-shot negative/positive | integrated_gradients (50 steps) | ≥ 10/s |

An explanation is one text explained by one method (``explain()``'s unit). Each workload is
warmed up on 16 texts (CUDA kernels, allocator), then timed over ``--n`` texts in one
``explain()`` call (the engine packs them under ``--max-batch-tokens``), stopped early at
``--budget-s`` seconds of work per workload (then the texts done so far count). Texts: SST-2
sentences from ``--data`` (or, when that file is absent, sentences generated from a fixed
vocabulary, which the output says). When the fine-tuned classifier folder is absent, the MiniLM
encoder ``minilm-l6`` with a fresh 2-class head is timed instead (same architecture and cost; the
output says so).

    python benchmarks/gpu_throughput.py --device cuda --json
    python benchmarks/gpu_throughput.py --tiny            # CPU smoke test on tiny random models
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"minilm_ig": 2000, "minilm_occlusion": 5000, "llm_occlusion": 100, "llm_ig": 10}
WORDS = "the a film movie plot acting was is very not good bad great dull funny long story".split()


def texts_from(path: Path, n: int) -> tuple[list[str], str]:
    if path.is_file():
        with open(path, encoding="utf-8", newline="") as fh:
            rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            texts = [r["sentence"].strip() for r in rows if r["sentence"].strip()]
        while len(texts) < n:
            texts += texts
        return texts[:n], str(path)
    rng = random.Random(0)
    gen = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25))) for _ in range(n)]
    return gen, "generated (5-25 words)"


def classifier_source(path: str, folder: Path) -> tuple[str, str]:
    """The fine-tuned classifier, or minilm-l6 with a fresh head saved to ``folder``."""
    if Path(path).is_dir():
        return path, path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from explainlm.models.sources import resolve_source

    base = resolve_source("minilm-l6").path
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "negative", 1: "positive"}
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder), "minilm-l6 with a fresh 2-class head (fine-tuned folder absent)"


def tiny_models(folder: Path) -> tuple[str, str]:
    """Tiny random BERT classifier and Llama LM with the real tokenizers (the tests' models)."""
    from explainlm.models.tiny import build_tiny_bert, build_tiny_llama

    return str(build_tiny_bert(folder / "bert")), str(build_tiny_llama(folder / "llama"))


def timed(clf: Any, method: str, texts: list[str], args: Any) -> dict[str, Any]:
    """Explanations/s of ``method`` over ``texts`` (in chunks, stopping at the time budget)."""
    from explainlm import explain

    kw = {"max_batch_tokens": args.max_batch_tokens, "mixed_precision": args.mixed_precision}
    explain(texts[:16], clf, [method], **kw)  # warm-up
    sync(args.device)
    done, t0 = 0, time.perf_counter()
    step = max(16, len(texts) // 8)
    for s in range(0, len(texts), step):
        explain(texts[s : s + step], clf, [method], **kw)
        done += len(texts[s : s + step])
        if time.perf_counter() - t0 > args.budget_s:
            break
    sync(args.device)
    seconds = time.perf_counter() - t0
    return {
        "method": method,
        "texts": done,
        "seconds": round(seconds, 3),
        "per_s": round(done / seconds, 1),
    }


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--classifier", default="/work/models/minilm-sst2")
    ap.add_argument("--llm", default="smollm2-135m")
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/sst2/train.tsv"))
    ap.add_argument("--n", type=int, default=8000, help="texts per MiniLM workload")
    ap.add_argument("--n-llm", type=int, default=2000, help="texts per LLM workload")
    ap.add_argument("--budget-s", type=float, default=45.0, help="timed seconds per workload")
    ap.add_argument("--max-batch-tokens", type=int, default=65536)
    ap.add_argument("--mixed-precision", action="store_true", help="bfloat16 autocast")
    ap.add_argument("--tiny", action="store_true", help="smoke test: tiny models, CPU, 48 texts")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.tiny:
        args.device, args.n, args.n_llm, args.max_batch_tokens = "cpu", 48, 48, 4096
    from explainlm.models import ModelWrapper, make_task

    tmp = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    if args.tiny:
        clf_path, llm_path = tiny_models(tmp)
        clf_note = "tiny random BERT (smoke test)"
    else:
        clf_path, clf_note = classifier_source(args.classifier, tmp / "clf")
        llm_path = args.llm
    texts, source = texts_from(Path(args.data), max(args.n, args.n_llm))
    clf = make_task(ModelWrapper.load(clf_path, device=args.device))
    llm = make_task(
        ModelWrapper.load(llm_path, device=args.device),
        "zero_shot",
        labels=["negative", "positive"],
    )
    rows = {
        "minilm_ig": timed(clf, "integrated_gradients", texts[: args.n], args),
        "minilm_occlusion": timed(clf, "occlusion", texts[: args.n], args),
        "llm_occlusion": timed(llm, "occlusion", texts[: args.n_llm], args),
        "llm_ig": timed(llm, "integrated_gradients", texts[: args.n_llm], args),
    }
    for name, row in rows.items():
        row["target_per_s"] = TARGETS[name]
        row["meets_target"] = None if args.tiny else row["per_s"] >= TARGETS[name]
    doc = {
        "date": dt.date.today().isoformat(),
        "device": device_name(args.device),
        "command": " ".join(["python", *sys.argv]),
        "classifier": clf_note,
        "llm": "tiny random Llama (smoke test)" if args.tiny else args.llm,
        "texts": source,
        "max_batch_tokens": args.max_batch_tokens,
        "mixed_precision": args.mixed_precision,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "results": rows,
    }
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        for name, r in rows.items():
            print(
                f"{name:<18} {r['per_s']:>9}/s  target {r['target_per_s']:>5}/s  "
                f"{'smoke' if r['meets_target'] is None else r['meets_target']}"
            )
    return 0


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__})"


if __name__ == "__main__":
    sys.exit(main())
