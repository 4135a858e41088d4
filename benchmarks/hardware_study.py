"""Issue 20's measurements: precision, adaptive IG and KernelSHAP sampling against fp32 and peers,
every comparison in interleaved rounds (benchmarks/rounds.py) with the load and CPU flags.

Suites (``--suite``, repeatable):

* ``minilm-ig`` / ``smollm-ig``: integrated gradients on the fine-tuned MiniLM classifier
  (/work/models/minilm-sst2) / SmolLM2 as a zero-shot classifier. Contenders: Captum's
  ``LayerIntegratedGradients`` one sentence a call (fp32, Gauss-Legendre, 50 steps, text tokens
  replaced by padding: the same baseline as ours); explainlm fp32 50 steps; explainlm's defaults
  (``precision="auto"``); explainlm bf16 50 steps; explainlm adaptive IG (``tolerance``; 0: not
  run). Quality: median and max |completeness error| per contender (its own, and against the fp32
  run's endpoint values), and Spearman rank correlation of token scores with explainlm fp32 50-step
  IG.
* ``smollm-perturb``: occlusion, LIME (500 samples) and KernelSHAP (sampled, 256 coalitions) on
  SmolLM2 zero-shot, ``precision="auto"`` against ``fp32``; agreement (Spearman of word scores, max
  |Δ probability|).
* ``peers``: on MiniLM, explainlm LIME (1000 samples) against ``lime`` (1000 samples), explainlm
  KernelSHAP against SHAP's partition explainer at SHAP's own budget.
* ``shapley-error``: on MiniLM sentences of ≤ 12 words, exact Shapley values (all 2^d coalitions)
  as the reference; error (relative L2) and time of KernelSHAP (leverage and kernel sampling) and
  of SHAP partition at several budgets; the equal-error comparison.

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/hardware_study.py --suite minilm-ig --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import Contender, format_table, interleave, log  # noqa: E402

from explainlm import explain  # noqa: E402
from explainlm.datasets import read_table  # noqa: E402
from explainlm.models import load_model  # noqa: E402
from explainlm.paths import data_dir  # noqa: E402

MINILM = "/work/models/minilm-sst2"
SUITES = ("minilm-ig", "smollm-ig", "smollm-perturb", "peers", "shapley-error")


def sentences(n: int, max_words: int | None = None) -> list[str]:
    texts = read_table(data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=400).texts
    if max_words:
        texts = [t for t in texts if 6 <= len(t.split()) <= max_words]
    return list(texts[:n])


# ------------------------------------------------------------------------------------- captum
class CaptumIG:
    """Captum's LayerIntegratedGradients, one sentence a call, on the classifier's target
    probability; text tokens replaced by padding in the baseline (special/template tokens kept)."""

    def __init__(self, clf: Any) -> None:
        self.clf = clf
        self.w = clf.wrapper
        self.zero_shot = clf.task == "zero_shot"

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        model = self.w.model
        if not self.zero_shot:
            return torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1]
        verb = torch.tensor([v[0] for v in self.clf.verbalizer_ids])
        scores = torch.log_softmax(logits.float(), -1)[:, verb] - self.clf.bias
        return torch.softmax(scores, -1)

    def __call__(self, texts: list[str]) -> list[dict[str, Any]]:
        from captum.attr import LayerIntegratedGradients

        lig = LayerIntegratedGradients(self.forward, self.w.model.get_input_embeddings())
        out = []
        for enc in self.clf.encode(texts):
            ids = torch.tensor([enc.input_ids])
            mask = torch.ones_like(ids)
            special = torch.tensor([enc.special])
            ref = torch.where(special, ids, torch.full_like(ids, self.w.pad_token_id))
            with torch.no_grad():
                target = int(self.forward(ids, mask).argmax(-1))
            attr, delta = lig.attribute(
                ids,
                baselines=ref,
                target=target,
                additional_forward_args=(mask,),
                n_steps=50,
                method="gausslegendre",
                return_convergence_delta=True,
            )
            out.append({"tokens": attr.sum(-1)[0].detach().numpy(), "delta": float(delta)})
        return out


# ----------------------------------------------------------------------------------- quality
def token_rank(a: Any, b: Any) -> float:
    keep = ~np.asarray(b.token_special, dtype=bool)
    x = np.asarray(a, dtype=float)[keep] if not hasattr(a, "token_scores") else None
    if x is None:
        x = np.asarray(a.token_scores, dtype=float)[keep]
    return float(spearmanr(x, np.asarray(b.token_scores, dtype=float)[keep])[0])


def ig_quality(outs: Any, ref: Any, captum: bool = False) -> dict[str, Any]:
    deltas = [abs(o["delta"]) if captum else abs(o.delta) for o in outs]
    ranks = [token_rank(o["tokens"] if captum else o, r) for o, r in zip(outs, ref, strict=True)]
    # Σ attributions − (f(e) − f(e′)) with the endpoints of the fp32 reference run: a
    # lower-precision run's own delta uses its own (rounded) endpoint values
    sums = [sum(o["tokens"]) if captum else sum(o.token_scores) for o in outs]
    gaps = [sum(r.token_scores) - r.delta for r in ref]
    vs32 = [abs(s - g) for s, g in zip(sums, gaps, strict=True)]
    q: dict[str, Any] = {
        "completeness_error_vs_fp32_endpoints_median": float(np.median(vs32)),
        "completeness_error_vs_fp32_endpoints_max": float(np.max(vs32)),
        "completeness_error_median": float(np.median(deltas)),
        "completeness_error_max": float(np.max(deltas)),
        "completeness_error_mean": float(np.mean(deltas)),
        "spearman_vs_fp32_50_min": float(np.min(ranks)),
        "spearman_vs_fp32_50_median": float(np.median(ranks)),
    }
    if not captum:
        q["precision"] = sorted({o.diagnostics.get("precision") for o in outs})
        q["steps"] = [o.diagnostics.get("steps", o.params.get("steps")) for o in outs]
    return q


def ig_suite(clf: Any, texts: list[str], rounds: int, tolerance: float) -> dict[str, Any]:
    captum = CaptumIG(clf)
    ig = "integrated_gradients"

    def ours(precision: str, **params: Any) -> Any:
        return lambda: explain(
            texts, clf, [ig], method_params={ig: params}, precision=precision, check=False
        )

    adaptive = {"tolerance": tolerance, "min_steps": 8, "steps": 50}
    contenders = [
        Contender("captum per-example fp32 GL-50", lambda: captum(texts), len(texts)),
        Contender("explainlm fp32 GL-50", ours("fp32", steps=50), len(texts)),
        Contender("explainlm defaults (auto)", ours("auto"), len(texts)),
        Contender("explainlm bf16 GL-50", ours("bf16", steps=50), len(texts)),
    ]
    if tolerance > 0:
        contenders.append(
            Contender(
                f"explainlm auto, adaptive tol {tolerance:g}", ours("auto", **adaptive), len(texts)
            )
        )
    res = interleave(contenders, rounds)
    ref = res.outputs["explainlm fp32 GL-50"]
    doc = res.to_doc([(c.name, contenders[0].name) for c in contenders[1:]])
    for c in doc["contenders"]:
        out = res.outputs[c["name"]]
        c["quality"] = ig_quality(out, ref, captum=c["name"].startswith("captum"))
    return doc


def perturb_suite(clf: Any, texts: list[str], rounds: int) -> dict[str, Any]:
    plan = [
        ("occlusion", {}),
        ("lime", {"n_samples": 500}),
        ("kernel_shap", {"n_samples": 256, "exact_max_features": 0}),
    ]
    contenders = []
    for m, p in plan:
        for prec in ("fp32", "auto"):
            contenders.append(
                Contender(
                    f"{m} {prec}",
                    lambda m=m, p=p, prec=prec: explain(
                        texts, clf, [m], method_params={m: p}, precision=prec, check=False
                    ),
                    len(texts),
                )
            )
    res = interleave(contenders, rounds)
    doc = res.to_doc([(f"{m} auto", f"{m} fp32") for m, _ in plan])
    for m, _ in plan:
        a, b = res.outputs[f"{m} auto"], res.outputs[f"{m} fp32"]
        rho = [float(spearmanr(x.word_scores, y.word_scores)[0]) for x, y in zip(a, b, strict=True)]
        dp = max(abs(x.probs[k] - y.probs[k]) for x, y in zip(a, b, strict=True) for k in x.probs)
        for c in doc["contenders"]:
            if c["name"] == f"{m} auto":
                c["agreement_with_fp32"] = {
                    "spearman_min": min(rho),
                    "spearman_median": float(np.median(rho)),
                    "max_prob_diff": dp,
                    "precision": sorted({x.diagnostics["precision"] for x in a}),
                }
    return doc


def format_errors(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"{m['cpu']}; flags {' '.join(m['cpu_flags'])}; load {m['load_average']}; {m['date']}",
        "",
        "| tool | budget | mean relative L2 error vs exact | seconds / explanation (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in doc["table"]:
        lines.append(
            f"| {r['tool']} | {r['budget']} | {r['error_mean']:.4f} | {r['seconds_median']:.3f} |"
        )
    for e in doc["equal_error"]:
        lines.append(f"\nequal error vs {e['reference']}: {json.dumps(e)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", action="append", choices=SUITES, required=True)
    ap.add_argument("--n", type=int, default=8, help="sentences per suite")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="adaptive IG's tolerance (0: no adaptive contender)",
    )
    ap.add_argument("--json", default=None, help="write the JSON document here")
    ap.add_argument(
        "--without-bf16",
        action="store_true",
        help="emulate a CPU without bf16 support: auto may not choose bf16 (the kernels are "
        "still this CPU's; the cache entry is the emulated machine's own)",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.without_bf16:
        from explainlm.models import autotune

        autotune.bf16_hardware = lambda device: None
        log("emulating a CPU without bf16: auto's candidates are fp32 and int8")
    docs: dict[str, Any] = {}
    for suite in args.suite:
        log(f"suite {suite}")
        if suite == "minilm-ig":
            docs[suite] = ig_suite(
                load_model(MINILM), sentences(args.n), args.rounds, args.tolerance
            )
        elif suite == "smollm-ig":
            clf = load_model("smollm2-135m")
            docs[suite] = ig_suite(clf, sentences(args.n), args.rounds, args.tolerance)
        elif suite == "smollm-perturb":
            docs[suite] = perturb_suite(load_model("smollm2-135m"), sentences(args.n), args.rounds)
        else:
            from hardware_peers import peers_suite, shapley_error_suite

            fn = peers_suite if suite == "peers" else shapley_error_suite
            docs[suite] = fn(load_model(MINILM), args.n, args.rounds)
        doc = docs[suite]
        doc["without_bf16"] = args.without_bf16
        text = format_table(doc) if "contenders" in doc else format_errors(doc)
        print(f"\n## {suite}\n\n{text}\n", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(docs, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
