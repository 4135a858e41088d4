"""Attribution throughput: explainlm's batched engine against Captum, SHAP and LIME.

Every tool explains the same sentences (the first ``--n`` of ``sst2/test.tsv`` in the data
directory) with THE SAME torch model object, in one process. Each tool is warmed up on 2 sentences,
then the whole batch of sentences is timed with ``time.perf_counter`` (explainlm gets all of them in
one ``explain()`` call, which is its design; the peers are driven as their documentation shows).

| tool | method | mode | what runs |
| --- | --- | --- | --- |
| explainlm | integrated_gradients | batched | 50 Gauss-Legendre steps, target = predicted prob |
| explainlm | occlusion, lime, kernel_shap, saliency | batched | lime 1000 samples; kernel_shap at SHAP's budget |
| captum | layer_integrated_gradients | per_example | word embeddings, 50 steps, [CLS] [PAD]… [SEP] |
| captum | layer_integrated_gradients | batched32 | 32 padded sentences a call, mask as extra arg |
| shap | partition | per_call | ``shap.Explainer(f, shap.maskers.Text(tok))``, default budget |
| lime | lime | per_example | ``LimeTextExplainer``, num_samples=1000, batched classifier_fn |

Perturbation methods (LIME, SHAP, occlusion) cost hundreds of model evaluations per sentence, so
they run on the first ``--n-perturbation`` sentences (default ``min(n, 8)``); the ``n`` column and
the JSON say which. A cheap agreement check prints the mean Pearson correlation between explainlm's
IG token scores and Captum's per-example LIG token attributions (text tokens) on the timed sentences.

    python benchmarks/attribution_throughput.py                 # table
    python benchmarks/attribution_throughput.py --n 32 --json   # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explainlm.attribution import explain
from explainlm.datasets import read_table
from explainlm.models import ModelWrapper, load_model
from explainlm.paths import data_dir

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "minilm-sst2"
TOOLS = ("explainlm", "captum", "shap", "lime")
IG_STEPS = 50
LIME_SAMPLES = 1000
SHAP_DEFAULT_MAX_EVALS = 500  # shap.explainers.Partition: max_evals="auto" means 500
MAX_BATCH_TOKENS = 8192
PEER_BATCH = 128  # rows per model call in the peers' prediction functions


def log(msg: str) -> None:
    print(f"[attribution_throughput] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- setup
def build_classifier(model: str | None, device: str) -> tuple[Any, str]:
    """The classifier to benchmark: ``--model``, ``models/minilm-sst2``, or MiniLM + a random head."""
    if model is None and DEFAULT_MODEL.is_dir():
        model = str(DEFAULT_MODEL)
    if model is not None:
        return load_model(model, device=device), model
    from transformers import AutoTokenizer, BertForSequenceClassification

    from explainlm.models.sources import resolve_source

    log("no trained classifier found: building MiniLM-L6 with a random 2-class head")
    ModelWrapper.load("minilm-l6")  # resolves (and caches) the built-in encoder
    src = resolve_source("minilm-l6").path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = BertForSequenceClassification.from_pretrained(src, num_labels=2)
        tok = AutoTokenizer.from_pretrained(src)
    out = Path(tempfile.mkdtemp(prefix="minilm-random-head-"))
    net.save_pretrained(out)
    tok.save_pretrained(out)
    return load_model(str(out), device=device), "minilm-l6 + random head"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


class Peers:
    """What the peer tools need: a probability function over strings, and Captum's forward."""

    def __init__(self, clf: Any) -> None:
        self.model = clf.wrapper.model
        self.tok = clf.wrapper.tokenizer
        self.device = clf.wrapper.device
        self.calls = 0  # model rows scored through predict_proba

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        self.calls += len(texts)
        out = []
        for s in range(0, len(texts), PEER_BATCH):
            enc = self.tok(texts[s : s + PEER_BATCH], padding=True, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items()}
            out.append(torch.softmax(self.model(**enc).logits.float(), -1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class probabilities (Captum picks the target column)."""
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits, -1)


# ------------------------------------------------------------------------------- explainlm
CHECK: dict[str, Any] = {}  # {"check": bool} when explain() has the faithfulness check


def run_explainlm(clf: Any, texts: list[str], method: str, params: dict[str, Any]) -> Any:
    return explain(
        texts,
        clf,
        [method],
        method_params={method: params},
        max_batch_tokens=MAX_BATCH_TOKENS,
        **CHECK,
    )


# ---------------------------------------------------------------------------------- captum
def captum_per_example(peers: Peers, texts: list[str]) -> list[np.ndarray]:
    """Captum's BERT-tutorial usage: one sentence a call, [CLS] + [PAD]… + [SEP] baseline."""
    from captum.attr import LayerIntegratedGradients

    model, tok = peers.model, peers.tok
    lig = LayerIntegratedGradients(peers.forward, model.get_input_embeddings())
    out = []
    for text in texts:
        ids = tok(text, return_tensors="pt")["input_ids"].to(peers.device)
        mask = torch.ones_like(ids)
        ref = torch.full_like(ids, tok.pad_token_id)
        ref[0, 0], ref[0, -1] = tok.cls_token_id, tok.sep_token_id
        with torch.no_grad():
            target = int(peers.forward(ids, mask).argmax(-1))
        attr, _delta = lig.attribute(
            ids,
            baselines=ref,
            target=target,
            additional_forward_args=(mask,),
            n_steps=IG_STEPS,
            return_convergence_delta=True,
        )
        out.append(attr.sum(-1)[0].detach().cpu().numpy())
    return out


def captum_batched(peers: Peers, texts: list[str], batch: int = 32) -> list[np.ndarray]:
    """32 padded sentences a call; attention mask as an additional forward arg.

    ``internal_batch_size`` keeps each internal pass within the same rows × length token budget
    explainlm uses (without it one call is 32 × 50 rows at once, tens of GB of activations).
    """
    from captum.attr import LayerIntegratedGradients

    model, tok = peers.model, peers.tok
    lig = LayerIntegratedGradients(peers.forward, model.get_input_embeddings())
    special = torch.tensor([tok.cls_token_id, tok.sep_token_id, tok.pad_token_id])
    out = []
    for s in range(0, len(texts), batch):
        enc = tok(texts[s : s + batch], padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"].to(peers.device), enc["attention_mask"].to(peers.device)
        ref = torch.where(
            torch.isin(ids, special.to(ids.device)), ids, torch.full_like(ids, tok.pad_token_id)
        )
        with torch.no_grad():
            target = peers.forward(ids, mask).argmax(-1).tolist()
        attr = lig.attribute(
            ids,
            baselines=ref,
            target=target,
            additional_forward_args=(mask,),
            n_steps=IG_STEPS,
            internal_batch_size=max(1, MAX_BATCH_TOKENS // ids.shape[1]),
        )
        scores = attr.sum(-1).detach().cpu().numpy()
        lens = mask.sum(-1).tolist()
        out.extend(scores[i, : lens[i]] for i in range(len(lens)))
    return out


# ------------------------------------------------------------------------------ shap, lime
def run_shap(peers: Peers, texts: list[str], labels: list[str]) -> Any:
    import shap

    explainer = shap.Explainer(
        peers.predict_proba, shap.maskers.Text(peers.tok), output_names=labels
    )
    return explainer(texts, silent=True)


def run_lime(peers: Peers, texts: list[str], labels: list[str]) -> list[Any]:
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(class_names=labels, random_state=0)
    out = []
    for text in texts:
        pred = int(peers.predict_proba([text])[0].argmax())
        out.append(
            explainer.explain_instance(
                text,
                peers.predict_proba,
                labels=(pred,),
                num_features=100,
                num_samples=LIME_SAMPLES,
            )
        )
    return out


# ------------------------------------------------------------------------------ agreement
def pearson_agreement(expl_ig: Any, captum_scores: list[np.ndarray]) -> dict[str, Any]:
    """Mean Pearson r between explainlm IG token scores and Captum LIG, over text tokens."""
    rs = []
    for e, c in zip(expl_ig, captum_scores, strict=False):
        ts = np.asarray(e.token_scores, dtype=np.float64)
        keep = ~np.asarray(e.token_special, dtype=bool)
        if len(ts) != len(c) or keep.sum() < 2:
            continue
        a, b = ts[keep], np.asarray(c, dtype=np.float64)[keep]
        if a.std() == 0 or b.std() == 0:
            continue
        rs.append(float(np.corrcoef(a, b)[0, 1]))
    return {
        "mean_pearson": float(np.mean(rs)) if rs else None,
        "min_pearson": float(np.min(rs)) if rs else None,
        "n": len(rs),
    }


# ----------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--n", type=int, default=32, help="sentences for the gradient methods")
    ap.add_argument(
        "--n-perturbation",
        type=int,
        default=None,
        help="sentences for occlusion/LIME/SHAP (default min(n, 8): they cost ~1000 passes each)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    ap.add_argument("--model", default=None, help="classifier dir (default models/minilm-sst2)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma list of " + ",".join(TOOLS))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compute explainlm's faithfulness check (off by default: the peers have none)",
    )
    args = ap.parse_args(argv)
    if "check" in inspect.signature(explain).parameters:
        CHECK["check"] = args.check

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tool(s): {', '.join(sorted(unknown))}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    clf, model_name = build_classifier(args.model, args.device)
    peers = Peers(clf)
    labels = list(clf.labels)
    n_pert = args.n_perturbation if args.n_perturbation is not None else min(args.n, 8)
    table = read_table(data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=args.n)
    texts = list(table.texts)
    ptexts = texts[:n_pert]
    warm = texts[:2]
    n_tok = [len(e) for e in clf.encode(texts)]
    log(
        f"model {model_name} on {args.device}, torch threads {torch.get_num_threads()}; "
        f"{len(texts)} sentences (mean {np.mean(n_tok):.1f} tokens, max {max(n_tok)}), "
        f"{len(ptexts)} for perturbation methods"
    )

    results: list[dict[str, Any]] = []
    keep: dict[str, Any] = {}

    def record(tool: str, method: str, mode: str, batch: list[str], fn: Callable[[], Any]) -> Any:
        log(f"{tool} {method} ({mode}): n={len(batch)} …")
        secs, out = timed(fn, args.device)
        results.append(
            {
                "tool": tool,
                "method": method,
                "mode": mode,
                "n": len(batch),
                "seconds": round(secs, 3),
                "explanations_per_second": len(batch) / secs,
            }
        )
        log(f"  {secs:.2f} s, {len(batch) / secs:.3f} explanations/s")
        return out

    # SHAP first: its measured number of model evaluations per sentence is kernel_shap's budget.
    shap_budget = SHAP_DEFAULT_MAX_EVALS
    shap_evals_note = "shap not run: default max_evals"
    if "shap" in tools:
        log("warm-up shap")
        run_shap(peers, warm, labels)
        peers.calls = 0
        record("shap", "partition", "per_call", ptexts, lambda: run_shap(peers, ptexts, labels))
        per = peers.calls / max(len(ptexts), 1)
        shap_budget = max(4, int(math.ceil(per)))
        shap_evals_note = f"measured: {per:.1f} model rows per sentence (max_evals cap 500)"
        results[-1]["model_evals_per_sentence"] = round(per, 1)
    if "lime" in tools:
        log("warm-up lime")
        run_lime(peers, warm, labels)
        record("lime", "lime", "per_example", ptexts, lambda: run_lime(peers, ptexts, labels))
    if "captum" in tools:
        log("warm-up captum")
        captum_per_example(peers, warm)
        captum_batched(peers, warm)
        keep["captum"] = record(
            "captum",
            "layer_integrated_gradients",
            "per_example",
            texts,
            lambda: captum_per_example(peers, texts),
        )
        record(
            "captum",
            "layer_integrated_gradients",
            "batched32",
            texts,
            lambda: captum_batched(peers, texts),
        )
    if "explainlm" in tools:
        plan = [
            ("integrated_gradients", {"steps": IG_STEPS}, texts),
            ("saliency", {}, texts),
            ("occlusion", {}, ptexts),
            ("lime", {"n_samples": LIME_SAMPLES}, ptexts),
            ("kernel_shap", {"n_samples": shap_budget, "exact_max_features": 0}, ptexts),
        ]
        log("warm-up explainlm")
        for method, params, _ in plan:
            run_explainlm(clf, warm, method, params)
        for method, params, batch in plan:
            out = record(
                "explainlm",
                method,
                "batched",
                batch,
                lambda m=method, p=params, b=batch: run_explainlm(clf, b, m, p),
            )
            if params:
                results[-1]["params"] = params
            if method == "integrated_gradients":
                keep["explainlm_ig"] = out

    # ratios of explainlm against the relevant peer
    def eps(tool: str, method: str, mode: str) -> float | None:
        for r in results:
            if (r["tool"], r["method"], r["mode"]) == (tool, method, mode):
                return r["explanations_per_second"]
        return None

    peers_of = {
        "integrated_gradients": [
            ("captum", "layer_integrated_gradients", "per_example"),
            ("captum", "layer_integrated_gradients", "batched32"),
        ],
        "lime": [("lime", "lime", "per_example")],
        "kernel_shap": [("shap", "partition", "per_call")],
    }
    for r in results:
        if r["tool"] != "explainlm":
            continue
        ratios = {}
        for peer in peers_of.get(r["method"], []):
            p = eps(*peer)
            if p:
                ratios[f"{peer[0]} {peer[2]}"] = round(r["explanations_per_second"] / p, 2)
        if ratios:
            r["ratio_vs"] = ratios

    agreement = None
    if "captum" in keep and "explainlm_ig" in keep:
        agreement = pearson_agreement(keep["explainlm_ig"], keep["captum"])

    target_met = None
    ig = eps("explainlm", "integrated_gradients", "batched")
    cap = eps("captum", "layer_integrated_gradients", "per_example")
    if ig and cap:
        target_met = ig / cap >= 2.0

    doc = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model_name,
        "n": len(texts),
        "n_perturbation": len(ptexts),
        "mean_tokens": round(float(np.mean(n_tok)), 1),
        "kernel_shap_budget": {"n_samples": shap_budget, "source": shap_evals_note},
        "versions": versions(),
        "results": results,
        "agreement_ig_vs_captum": agreement,
        "cpu_target_ig_2x_captum_per_example_met": target_met,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return 0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("transformers", "captum", "shap", "lime"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def print_table(doc: dict[str, Any]) -> None:
    print(
        f"device: {doc['device']} ({doc['device_name']}, {doc['cpu_count']} CPUs, "
        f"torch threads {doc['torch_threads']}, load avg {doc['load_average'][0]:.2f})"
    )
    print(
        f"model: {doc['model']}; n={doc['n']} sentences (mean {doc['mean_tokens']} tokens), "
        f"perturbation methods on n={doc['n_perturbation']}; kernel_shap n_samples="
        f"{doc['kernel_shap_budget']['n_samples']} ({doc['kernel_shap_budget']['source']})"
    )
    head = f"{'tool':<10} {'method':<27} {'mode':<12} {'n':>4} {'seconds':>9} {'expl/s':>9}  ratio"
    print(head)
    print("-" * len(head))
    for r in doc["results"]:
        ratio = ", ".join(f"{v:.2f}x vs {k}" for k, v in r.get("ratio_vs", {}).items())
        print(
            f"{r['tool']:<10} {r['method']:<27} {r['mode']:<12} {r['n']:>4} "
            f"{r['seconds']:>9.2f} {r['explanations_per_second']:>9.3f}  {ratio}"
        )
    ag = doc["agreement_ig_vs_captum"]
    if ag and ag["mean_pearson"] is not None:
        print(
            f"agreement: explainlm IG vs Captum LIG (per-example), text tokens: mean Pearson "
            f"{ag['mean_pearson']:.4f} (min {ag['min_pearson']:.4f}, {ag['n']} sentences)"
        )
    met = doc["cpu_target_ig_2x_captum_per_example_met"]
    if met is not None:
        print(f"CPU target 'IG >= 2x Captum per-example': {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    raise SystemExit(main())
