"""The steps every case study shares (:mod:`explainlm.services.case`): get the classifier (reuse a
trained directory or train one with the ``train`` service), measure it on the test split with
confidence intervals, explain correct and wrong predictions with the trusted method (the
``explain`` service), and its faithfulness against a random ranking (the ``benchmark`` service).

Each step calls a service with the case's context (same run store, same progress), keeps the
service's ``run_id`` as the evidence behind the numbers, and returns one section of the case
document. The statistics here are the ones the services do not already compute: per-class
precision, recall and F1 with percentile-bootstrap intervals over texts.

>>> per_class_metrics(["a", "b", "a", "b"], ["a", "b", "b", "b"], ["a", "b"], n_boot=200)["accuracy"]
0.75
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explainlm.services.base import ServiceContext

RANDOM = "random"


def trusted_method() -> str:
    """``auto`` (the most faithful affordable method, checked per input) when it exists, else
    occlusion (the method the trust tables in RESULTS find faithful on both built-in model kinds)."""
    from explainlm.methods import METHODS

    return "auto" if "auto" in METHODS else "occlusion"


def sub(ctx: ServiceContext) -> ServiceContext:
    """The context the case's steps run services with (the same store, progress and models)."""
    return ServiceContext(store=ctx.store, progress=ctx.progress, models=ctx.models,
                          source=ctx.source)  # fmt: skip


# ------------------------------------------------------------------------------- the model
def trained_dir(path: str) -> bool:
    """A directory ``explainlm train`` wrote (reused as is)."""
    meta = Path(path) / "explainlm.json"
    return meta.is_file() and "labels" in json.loads(meta.read_text())


def ensure_model(ctx: ServiceContext, req: Any, source: str, *, label_names: Any = None) -> dict:
    """Reuse ``req.model`` when it holds a trained classifier, else train it there on ``source``
    (``NAME:SPLIT``) with the train service."""
    from explainlm.services import train

    if trained_dir(req.model):
        meta = json.loads((Path(req.model) / "explainlm.json").read_text())
        return {"path": req.model, "trained_now": False, "labels": meta["labels"],
                "base_model": meta.get("base_model"), "params": meta.get("params", {}),
                "train_seconds": meta.get("train_seconds")}  # fmt: skip
    treq = train.build_request(
        train.TrainRequest, train_file=source, output=req.model,
        label_names=label_names, base_model=req.base_model, epochs=req.epochs,
        batch_size=req.batch_size, learning_rate=req.learning_rate, max_length=req.max_length,
        limit=req.train_limit, seed=req.seed,
    )  # fmt: skip
    res = train.run(treq, sub(ctx), log=lambda _m: None)
    return {"path": req.model, "trained_now": True, "labels": res.summary["labels"],
            "train_run": res.run_id, "base_model": req.base_model,
            "train_seconds": res.summary.get("train_seconds"),
            "params": {"train_file": source, "limit": req.train_limit, "epochs": req.epochs,
                       "max_length": req.max_length}}  # fmt: skip


# ------------------------------------------------------------------------- test metrics
def _prf(gold: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Rows (precision, recall, F1) per class index < k; 0 where undefined (scikit-learn's rule)."""
    out = np.zeros((3, k))
    for c in range(k):
        tp = np.sum((pred == c) & (gold == c))
        p_n, g_n = np.sum(pred == c), np.sum(gold == c)
        p = tp / p_n if p_n else 0.0
        r = tp / g_n if g_n else 0.0
        out[:, c] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    return out


def per_class_metrics(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str], *, n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy (Wilson CI), macro-F1 and per-class precision/recall/F1 (bootstrap CIs over texts)."""
    from explainlm.audits.stats import percentile_ci, wilson_ci

    index = {lab: i for i, lab in enumerate(labels)}
    g = np.array([index[x] for x in gold])
    p = np.array([index.get(x, -1) for x in pred])
    k, n = len(labels), len(g)
    point = _prf(g, p, k)
    rng = np.random.default_rng(seed)
    boots = np.stack([_prf(g[i], p[i], k) for i in rng.integers(0, n, (n_boot, n))])
    correct = int(np.sum(g == p))
    acc_ci = wilson_ci(correct, n)
    macro = boots[:, 2, :].mean(axis=1)
    rows = []
    for c, lab in enumerate(labels):
        f_lo, f_hi = percentile_ci(boots[:, 2, c])
        rows.append({"label": lab, "n": int(np.sum(g == c)), "precision": float(point[0, c]),
                     "recall": float(point[1, c]), "f1": float(point[2, c]),
                     "f1_low": f_lo, "f1_high": f_hi})  # fmt: skip
    confusion = [[int(np.sum((g == a) & (p == b))) for b in range(k)] for a in range(k)]
    m_lo, m_hi = percentile_ci(macro)
    return {"n": n, "accuracy": correct / n, "accuracy_low": acc_ci[0],
            "accuracy_high": acc_ci[1], "macro_f1": float(point[2].mean()),
            "macro_f1_low": m_lo, "macro_f1_high": m_hi, "per_class": rows,
            "labels": list(labels), "confusion": confusion, "n_boot": n_boot}  # fmt: skip


def predict_texts(ctx: ServiceContext, model: str, texts: Sequence[str], **task: Any) -> Any:
    """The ``predict`` service on ``texts`` (recorded; its run id is the evidence)."""
    from explainlm.services import predict

    req = predict.PredictRequest(texts=list(texts), model=model, **task)
    return predict.run(req, sub(ctx))


def measure_on_test(
    ctx: ServiceContext, model: str, examples: Sequence[Any], labels: Sequence[str], req: Any,
    **task: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """The model's test metrics with CIs, and its predictions (one per example)."""
    res = predict_texts(ctx, model, [e.text for e in examples], **task)
    pred = [p["label"] for p in res.predictions]
    metrics = per_class_metrics([e.label for e in examples], pred, labels, n_boot=req.n_boot,
                                seed=req.seed)  # fmt: skip
    return {**metrics, "model": model, "predict_run": res.run_id}, res.predictions


# --------------------------------------------------------------------------- explanations
def pick_examples(
    examples: Sequence[Any], predictions: Sequence[dict[str, Any]], n_right: int, n_wrong: int
) -> list[int]:
    """Indices of the first ``n_right`` correct and ``n_wrong`` wrong predictions, one per gold
    label in turn where possible (so every class is shown)."""
    chosen: list[int] = []
    for want_right, n in ((True, n_right), (False, n_wrong)):
        pool = [i for i, e in enumerate(examples)
                if (predictions[i]["label"] == e.label) == want_right]  # fmt: skip
        by_label: dict[str, list[int]] = {}
        for i in pool:
            by_label.setdefault(examples[i].label, []).append(i)
        picked: list[int] = []
        while len(picked) < n and any(by_label.values()):
            for lab in list(by_label):
                if by_label[lab] and len(picked) < n:
                    picked.append(by_label[lab].pop(0))
        chosen += picked
    return chosen


def explain_section(
    ctx: ServiceContext, model: str, texts: Sequence[str], gold: Sequence[str | None], **task: Any
) -> dict[str, Any]:
    """The ``explain`` service with the trusted method on ``texts``, with every verdict."""
    from explainlm.services import explain

    method = trusted_method()
    req = explain.ExplainRequest(texts=list(texts), model=model, methods=[method], **task)
    res = explain.run(req, sub(ctx))
    items = []
    for e, g in zip(res.explanations, gold, strict=True):
        items.append({"gold": g, "explanation": e.to_dict(), "verdict": verdict_of(e)})
    return {"run_id": res.run_id, "method": method, "items": items}


def verdict_of(e: Any) -> dict[str, Any]:
    """The explanation's faithfulness verdict (passes / fails / undecided / unchecked)."""
    check = getattr(e, "check", None)
    n = len(e.scores)
    try:
        from explainlm.report.trust import verdict  # the trust-default verdict, when present

        target = str(getattr(e, "target", "prob") or "prob")
        return verdict(check, target, n)
    except ImportError:  # pragma: no cover - before report.trust exists
        if check is None:
            return {"status": "unchecked"}
        comp = check.get("comprehensiveness")
        rand = (check.get("random") or {}).get("comprehensiveness") or 0.0
        ok = comp is not None and comp - rand >= 0.02 and comp > 0
        return {
            "status": "passes" if ok else "fails",
            "gain": None if comp is None else comp - rand,
        }


def faithfulness_section(
    ctx: ServiceContext, model: str, dataset: str, limit: int, req: Any
) -> dict[str, Any]:
    """The ``benchmark`` service: comprehensiveness and sufficiency of the trusted method and
    ``req.compare_methods`` (integrated gradients) against a random ranking, CIs, paired tests."""
    from explainlm.services import benchmark

    methods = list(dict.fromkeys([trusted_method(), *req.compare_methods, RANDOM]))
    breq = benchmark.BenchmarkRequest(
        model=model, dataset=dataset, split="test", methods=methods,
        metrics=["comprehensiveness", "sufficiency"], limit=limit, seed=req.seed,
        n_boot=max(req.n_boot, 100),
    )  # fmt: skip
    res = benchmark.run(breq, sub(ctx))
    doc = res.to_json_doc()
    return {"run_id": doc.get("run_id"), "n": doc.get("n"), "table": doc.get("table", []),
            "tests": doc.get("tests", []), "methods": methods}  # fmt: skip
