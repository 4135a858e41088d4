"""The domain-specific steps of the case studies, each one service call and one section of the
case document: a zero-shot LLM next to the classifier (predict + explain), counterfactual edits
(``whatif``), a quantized variant (``compare``), dataset-level important terms and a surrogate tree
(``global``), and the Bias-in-Bios gender audit (``audit bios``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.services.base import ServiceContext
from explainlm.services.case_steps import (
    ensure_model,
    explain_section,
    per_class_metrics,
    predict_texts,
    sub,
)


def mcnemar_p(a_right: Sequence[bool], b_right: Sequence[bool]) -> float:
    """Exact McNemar test of two classifiers' correctness on the same texts (two-sided)."""
    from scipy.stats import binomtest

    b = sum(1 for x, y in zip(a_right, b_right, strict=True) if x and not y)
    c = sum(1 for x, y in zip(a_right, b_right, strict=True) if y and not x)
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


def llm_section(
    ctx: ServiceContext, req: Any, examples: Sequence[Any], clf_predictions: Sequence[dict],
    labels: Sequence[str], template: str,
) -> dict[str, Any]:  # fmt: skip
    """The zero-shot LLM on the first ``llm_limit`` test texts, against the fine-tuned classifier."""
    part = list(examples[: req.llm_limit])
    task = {"task": "zero_shot", "labels": list(labels), "template": template}
    res = predict_texts(ctx, req.llm, [e.text for e in part], **task)
    pred = [p["label"] for p in res.predictions]
    gold = [e.label for e in part]
    llm = per_class_metrics(gold, pred, labels, n_boot=req.n_boot, seed=req.seed)
    ours = per_class_metrics(gold, [p["label"] for p in clf_predictions[: len(part)]], labels,
                             n_boot=req.n_boot, seed=req.seed)  # fmt: skip
    right_llm = [p == g for p, g in zip(pred, gold, strict=True)]
    right_clf = [p["label"] == g for p, g in zip(clf_predictions, gold, strict=False)]
    out = {"model": req.llm, "template": template, "predict_run": res.run_id, "llm": llm,
           "classifier": ours, "mcnemar_p": mcnemar_p(right_clf, right_llm),
           "agreement": sum(p == c["label"] for p, c in zip(pred, clf_predictions, strict=False))
           / len(part)}  # fmt: skip
    if req.llm_explain:
        shown = part[: req.llm_explain]
        out["explanations"] = explain_section(
            ctx, req.llm, [e.text for e in shown], [e.label for e in shown], **task
        )
    return out


def counterfactual_section(
    ctx: ServiceContext, req: Any, texts: Sequence[str], target: str | None = None
) -> dict[str, Any]:
    """Minimal edits that change the classifier's decision (``whatif`` counterfactuals)."""
    from explainlm.services import whatif

    creq = whatif.build_request(
        whatif.CounterfactualRequest, texts=list(texts), model=req.model, target=target, n=1,
        sources=["embedding", "delete"], max_queries=150, quality=False, seed=req.seed,
    )  # fmt: skip
    res = whatif.run(creq, sub(ctx))
    doc = res.to_json_doc()
    return {"run_id": doc["run_id"], "summary": doc["summary"], "results": doc["results"],
            "target": target}  # fmt: skip


def compression_section(ctx: ServiceContext, req: Any, dataset: str) -> dict[str, Any]:
    """The quantized variants against the classifier (``compare``): accuracy, agreement, drift."""
    from explainlm.services import compare
    from explainlm.services.compare_request import CompareRequest

    creq = CompareRequest(
        reference=req.model, variants=list(req.variants), dataset=dataset, split="test",
        limit=req.compress_limit, methods=["occlusion"], rounds=2, timing_texts=8,
        data_dir=req.data_dir,
    )  # fmt: skip
    res = compare.run(creq, sub(ctx))
    return {"run_id": res.run_id, "document": res.to_json_doc()}


def importance_section(ctx: ServiceContext, req: Any, dataset: str) -> dict[str, Any]:
    """Dataset-level important terms per predicted class (``global importance``, occlusion)."""
    from explainlm.services import behaviour

    ireq = behaviour.ImportanceRequest(
        model=req.model, dataset=dataset, split="test", limit=req.importance_limit,
        data_dir=req.data_dir, min_count=3, min_texts=2, top=8, rank="lower",
        check_faithfulness=min(20, req.importance_limit), n_boot=req.n_boot, seed=req.seed,
    )  # fmt: skip
    imp = behaviour.run(ireq, sub(ctx))
    doc = imp.to_json_doc(k=8)
    return {"run_id": imp.run_id, "document": doc}


def surrogate_section(ctx: ServiceContext, req: Any, dataset: str) -> dict[str, Any]:
    """A depth-3 decision tree imitating the classifier, with its held-out fidelity."""
    from explainlm.services import behaviour

    sreq = behaviour.SurrogateRequest(
        model=req.model, dataset=dataset, split="test", limit=req.surrogate_limit,
        data_dir=req.data_dir, kinds=["tree"], tree_depth=3, max_depth=4, min_df=3,
        n_boot=req.n_boot, seed=req.seed,
    )  # fmt: skip
    res = behaviour.run(sreq, sub(ctx))
    tree = res.reports[0]
    return {"run_id": res.run_id, "rules": tree.rules, "fidelity": tree.fidelity,
            "verdict": tree.verdict, "trivial": tree.baseline_fidelity,
            "n_texts": res.meta.get("n_texts")}  # fmt: skip


def bios_section(ctx: ServiceContext, req: Any) -> dict[str, Any]:
    """Bias in Bios: the gender audit of a medical-occupation classifier (trained if missing)."""
    from explainlm.services import audit

    model = ensure_model(ctx, req.model_copy(update={"model": req.bios_model, "epochs": req.bios_epochs,
                                                     "train_limit": None}), "biosbias:train")  # fmt: skip
    areq = audit.build_request(
        audit.BiosAuditRequest, model=req.bios_model, limit=req.bios_limit,
        plausibility=req.bios_plausibility, n_boot=req.n_boot,
        n_perm=req.n_perm, seed=req.seed,
    )  # fmt: skip
    res = audit.run(areq, sub(ctx))
    return {"run_id": res.run_id, "model": model, "document": res.report}
