"""The compression study of benchmarks/RESULTS.md: a reference model against its compressed variants.

Runs ``explainlm compare`` through the service (stored, resumable) and prints Markdown tables:
predictions/speed/size per variant, attribution drift per method, faithfulness change, and the
stability ranking. Studies (``--study``):

* ``sst2-minilm``: /work/models/minilm-sst2 (fp32) vs every variant, SST-2 test.
* ``sst2-smollm``: smollm2-135m (GGUF Q4_1, de-quantized) vs lower-bit and pruned variants.
* ``hatexplain-minilm``: /work/models/minilm-hatexplain vs a subset of variants, HateXplain test.
* ``llamacpp``: smollm2-135m under llama.cpp vs the de-quantized torch model (forward-only methods).

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/compression_study.py --study sst2-minilm --limit 32
    python benchmarks/compression_study.py --show RUN_ID          # tables of a finished run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

ALL_VARIANTS = [  # cheapest and most informative first: a partial run still covers each kind
    "int8",
    "rtn8",
    "rtn4",
    "rtn2",
    "magnitude:0.5",
    "random:0.5",
    "heads:0.25",
    "rtn6",
    "rtn3",
    "magnitude:0.3",
    "magnitude:0.7",
    "random:0.3",
    "random:0.7",
    "bf16",
    "fp16",
]
CHEAP_PARAMS = [
    "integrated_gradients.steps=16",
    "kernel_shap.n_samples=64",
    "kernel_shap.exact_max_features=6",
]
STUDIES: dict[str, dict[str, Any]] = {
    "sst2-minilm": {
        "reference": "/work/models/minilm-sst2",
        "variants": ALL_VARIANTS,
        "dataset": "sst2",
        "calibration_split": "dev",
        "metrics": [],
        "method_params": CHEAP_PARAMS,
    },
    "sst2-smollm": {
        "reference": "smollm2-135m",
        "variants": ["rtn3", "rtn2", "magnitude:0.3", "random:0.3", "heads:0.25:calib=4"],
        "dataset": "sst2",
        "calibration_split": "dev",
        "metrics": [],
        "method_params": [
            "integrated_gradients.steps=8",
            "kernel_shap.n_samples=32",
            "kernel_shap.exact_max_features=5",
        ],
        "rounds": 3,
        "timing_texts": 4,
    },
    "hatexplain-minilm": {
        "reference": "/work/models/minilm-hatexplain",
        "variants": ["int8", "rtn4", "rtn3", "rtn2", "magnitude:0.5", "random:0.5", "heads:0.25"],
        "dataset": "hatexplain",
        "calibration_split": "val",
        "metrics": [],
        "method_params": CHEAP_PARAMS,
    },
    "sst2-faithfulness": {
        "reference": "/work/models/minilm-sst2",
        "variants": ["rtn4", "rtn2", "magnitude:0.5", "random:0.5"],
        "dataset": "sst2",
        "methods": ["occlusion", "kernel_shap"],
        "metrics": ["comprehensiveness", "sufficiency"],
        "method_params": ["kernel_shap.n_samples=64", "kernel_shap.exact_max_features=6"],
        "rounds": 3,
        "timing_texts": 16,
    },
    "llamacpp": {
        "reference": "smollm2-135m",
        "variants": ["llamacpp"],
        "dataset": "sst2",
        "methods": ["occlusion", "kernel_shap"],
        "metrics": [],
        "method_params": ["kernel_shap.n_samples=32", "kernel_shap.exact_max_features=5"],
        "rounds": 3,
        "timing_texts": 8,
    },
}


def ci(d: dict[str, Any] | None, key: str = "mean") -> str:
    if not d or d.get(key) is None:
        return "–"
    return f"{d[key]:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"


def tables(doc: dict[str, Any]) -> str:
    out = []
    ref = doc["reference"]
    out.append(
        f"Reference `{doc['reference_model']}` on {doc['dataset']['name']} (n = {doc['dataset']['n']}): "
        f"accuracy {ci(ref.get('accuracy'), 'value')}; run `{doc.get('run_id')}`; "
        f"{doc['environment']['date']}, load average at start {doc['environment']['load_average'][0]}.\n"
    )
    out.append(
        "| variant | accuracy | agreement | McNemar p | time ratio (median [min, max]) | size MB (packed) |"
    )
    out.append("|---|---|---|---|---|---|")
    for v in doc["variants"]:
        p, s, info = v["predictions"], v.get("speed") or {}, v["info"]
        r = s.get("batch_ratio") or {}
        ratio = f"{r['median']:.2f} [{r['min']:.2f}, {r['max']:.2f}]" if r else "–"
        mb = f"{info['packed_bytes'] / 1e6:.1f}" if info.get("packed_bytes") else "–"
        mc = f"{p['mcnemar_p']:.3g}" if p.get("mcnemar_p") is not None else "–"
        out.append(
            f"| {v['spec']} | {ci(p.get('accuracy'), 'value')} | {ci(p.get('agreement'), 'value')} "
            f"| {mc} | {ratio} | {mb} |"
        )
    methods = doc["methods"]
    out.append(
        "\nSpearman ρ / top-5 agreement of each method's attributions with the reference's:\n"
    )
    out.append("| variant | " + " | ".join(methods) + " |")
    out.append("|---|" + "---|" * len(methods))
    for v in doc["variants"]:
        cells = []
        for m in methods:
            d = v["drift"].get(m)
            cells.append(
                f"{ci(d['spearman'])} / {d['top_k']['mean']:.2f}"
                if d
                else "n/a (" + v["skipped"].get(m, "") + ")"
            )
        out.append(f"| {v['spec']} | " + " | ".join(cells) + " |")
    out.append(
        "\nComprehensiveness change (variant − reference, own explanations on own model), paired Wilcoxon p:\n"
    )
    out.append("| variant | " + " | ".join(methods) + " |")
    out.append("|---|" + "---|" * len(methods))
    for v in doc["variants"]:
        cells = []
        for m in methods:
            f = v.get("faithfulness", {}).get(m, {}).get("comprehensiveness")
            cells.append(
                f"{ci(f['delta'])} (p = {f['p_value']:.2g})"
                if f and f.get("p_value") is not None
                else "–"
            )
        out.append(f"| {v['spec']} | " + " | ".join(cells) + " |")
    order = ", ".join(f"{r['method']} ({r['mean_rank']:.2f})" for r in doc["ranking"])
    out.append(f"\nStability ranking (mean rank over variants, 1 = most stable): {order}\n")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--study", choices=sorted(STUDIES))
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--resume")
    ap.add_argument("--show")
    ap.add_argument("--output")
    args = ap.parse_args()
    from explainlm.progress import TerminalProgress
    from explainlm.services.base import ServiceContext, build_request
    from explainlm.services.compare import CompareRequest, run, summarize_stored
    from explainlm.store import open_store

    store = open_store()
    if args.show:
        result = summarize_stored(store, args.show)
    else:
        if not args.study:
            ap.error("--study or --show")
        fields = {"limit": args.limit, "resume": args.resume, **STUDIES[args.study]}
        request = build_request(CompareRequest, **fields)
        start = time.perf_counter()
        print(
            f"command: {' '.join(sys.argv)}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
            flush=True,
        )
        result = run(
            request, ServiceContext(store=store, progress=TerminalProgress(), source="benchmark")
        )
        print(f"wall time {time.perf_counter() - start:.0f} s", flush=True)
    if args.output:
        result.write(args.output)
    doc = result.to_json_doc()
    print(tables(doc))
    print(json.dumps({"run_id": doc["run_id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
