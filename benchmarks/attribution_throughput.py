"""Attribution throughput: explainlm's batched engine against Captum, SHAP and LIME.

Every tool explains the same sentences (the first ``--n`` of ``sst2/test.tsv`` in the data
directory) with THE SAME torch model object, in one process. Each tool is warmed up on 2 sentences,
then every contender runs once per round, in turn, for ``--rounds`` interleaved rounds
(benchmarks/rounds.py); the report gives each one's explanations/s and the median (min/max) of the
per-round ratios, with the load average and CPU flags. explainlm gets all sentences in one
``explain()`` call, which is its design; the peers are driven as their documentation shows.

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
import inspect
import json
import math
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import Contender, format_table, interleave  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "models" / "minilm-sst2"
TOOLS = ("explainlm", "captum", "shap", "lime")
IG_STEPS = 50
LIME_SAMPLES = 1000
SHAP_DEFAULT_MAX_EVALS = 500  # shap.explainers.Partition: max_evals="auto" means 500
BUDGET: dict[str, int | None] = {"max_batch_tokens": None}  # None: the measured pass size (auto)
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
        max_batch_tokens=BUDGET["max_batch_tokens"],
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
            internal_batch_size=max(1, (BUDGET["max_batch_tokens"] or 2048) // ids.shape[1]),
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
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--n", type=int, default=32, help="sentences for the gradient methods")
    ap.add_argument(
        "--n-perturbation",
        type=int,
        default=None,
        help="sentences for occlusion/LIME/SHAP (default min(n, 8): they cost ~1000 passes each)",
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (after a warm-up)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    ap.add_argument("--model", default=None, help="classifier dir (default models/minilm-sst2)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma list of " + ",".join(TOOLS))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--precision", default="auto", help="explainlm's precision (auto, fp32, …)")
    ap.add_argument(
        "--max-batch-tokens", type=int, default=None, help="explainlm's pass size (default: auto's)"
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="also compute explainlm's faithfulness check (off by default: the peers have none)",
    )
    return ap.parse_args(argv)


def contenders_for(
    tools: list[str], clf: Any, texts: list[str], ptexts: list[str], args: argparse.Namespace
) -> tuple[list[Contender], int]:
    """Every tool's contenders (SHAP's measured budget is KernelSHAP's)."""
    peers = Peers(clf)
    labels = list(clf.labels)
    out: list[Contender] = []
    shap_budget = SHAP_DEFAULT_MAX_EVALS
    if "shap" in tools:
        peers.calls = 0
        run_shap(peers, ptexts, labels)
        shap_budget = max(4, int(math.ceil(peers.calls / max(len(ptexts), 1))))
        out.append(
            Contender(
                "shap partition", lambda: run_shap(peers, ptexts, labels), len(ptexts),
                {"model_evals_per_sentence": shap_budget},
            )
        )  # fmt: skip
    if "lime" in tools:
        out.append(Contender("lime", lambda: run_lime(peers, ptexts, labels), len(ptexts)))
    if "captum" in tools:
        out.append(Contender(CAPTUM_PE, lambda: captum_per_example(peers, texts), len(texts)))
        out.append(Contender(CAPTUM_B32, lambda: captum_batched(peers, texts), len(texts)))
    if "explainlm" in tools:
        plan = [
            ("integrated_gradients", {"steps": IG_STEPS}, texts),
            ("saliency", {}, texts),
            ("occlusion", {}, ptexts),
            ("lime", {"n_samples": LIME_SAMPLES}, ptexts),
            ("kernel_shap", {"n_samples": shap_budget, "exact_max_features": 0}, ptexts),
        ]
        for method, params, batch in plan:
            out.append(
                Contender(
                    f"explainlm {method}",
                    lambda m=method, p=params, b=batch: run_explainlm(clf, b, m, p),
                    len(batch),
                    {"params": params, "precision": args.precision},
                )
            )
    return out, shap_budget


CAPTUM_PE = "captum layer_integrated_gradients per_example"
CAPTUM_B32 = "captum layer_integrated_gradients batched32"
PAIRS = [
    ("explainlm integrated_gradients", CAPTUM_PE),
    ("explainlm integrated_gradients", CAPTUM_B32),
    ("explainlm lime", "lime"),
    ("explainlm kernel_shap", "shap partition"),
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if "check" in inspect.signature(explain).parameters:
        CHECK["check"] = args.check
    if "precision" in inspect.signature(explain).parameters:
        CHECK["precision"] = args.precision
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"unknown tool(s): {', '.join(sorted(unknown))}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    BUDGET["max_batch_tokens"] = args.max_batch_tokens
    torch.manual_seed(0)

    clf, model_name = build_classifier(args.model, args.device)
    n_pert = args.n_perturbation if args.n_perturbation is not None else min(args.n, 8)
    table = read_table(data_dir() / "sst2" / "test.tsv", text_column="sentence", limit=args.n)
    texts = list(table.texts)
    ptexts = texts[:n_pert]
    n_tok = [len(e) for e in clf.encode(texts)]
    log(
        f"model {model_name} on {args.device}, torch threads {torch.get_num_threads()}; "
        f"{len(texts)} sentences (mean {np.mean(n_tok):.1f} tokens, max {max(n_tok)}), "
        f"{len(ptexts)} for perturbation methods"
    )
    contenders, shap_budget = contenders_for(tools, clf, texts, ptexts, args)
    res = interleave(contenders, args.rounds)
    names = {c.name for c in contenders}
    doc = res.to_doc([(a, b) for a, b in PAIRS if a in names and b in names])
    agreement = None
    if CAPTUM_PE in res.outputs and "explainlm integrated_gradients" in res.outputs:
        agreement = pearson_agreement(
            res.outputs["explainlm integrated_gradients"], res.outputs[CAPTUM_PE]
        )
    doc.update(
        {
            "device": args.device,
            "model": model_name,
            "n": len(texts),
            "n_perturbation": len(ptexts),
            "mean_tokens": round(float(np.mean(n_tok)), 1),
            "kernel_shap_budget": shap_budget,
            "precision": args.precision,
            "max_batch_tokens": args.max_batch_tokens,
            "versions": versions(),
            "agreement_ig_vs_captum": agreement,
        }
    )
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(format_table(doc))
        print(f"agreement explainlm IG vs Captum LIG (Pearson, text tokens): {agreement}")
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


if __name__ == "__main__":
    raise SystemExit(main())
