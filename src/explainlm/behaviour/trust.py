"""How far to trust dataset-level attributions: a faithfulness check against random scores, and
the cost of a method in model evaluations (for up-front estimates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from explainlm.behaviour.importance import TextRecord


def method_cost(method: str, params: dict[str, Any], n_words: int) -> float:
    """Model evaluations per text (for estimates): perturbations count variants, gradients rows."""
    if method == "occlusion":
        return n_words + 1
    if method == "lime":
        return float(params.get("n_samples", 1000))
    if method == "kernel_shap":
        return (
            2.0**n_words
            if n_words <= int(params.get("exact_max_features", 12))
            else float(params.get("n_samples") or 2 * n_words + 2048)
        )
    if method in ("integrated_gradients",):
        return 2.0 * (int(params.get("steps", 50)) + 2)
    if method == "smoothgrad":
        return 2.0 * int(params.get("samples", 20))
    return 2.0


def faithfulness_check(
    clf: Any, records: Sequence[TextRecord], method: str, *, n: int = 50, seed: int = 0
) -> list[dict[str, Any]]:
    """Comprehensiveness of the method against random scores on the first ``n`` texts."""
    if n <= 0:
        return []
    from explainlm.attribution import explain
    from explainlm.evaluation import evaluate
    from explainlm.explanation import Explanation

    recs = [r for r in records if len(r.words) > 1][:n]
    if len(recs) < 5:
        return []
    exps = [
        Explanation(r.text, method, "prob", r.label, r.predicted, r.probs, r.words, r.scores)
        for r in recs
    ]
    rand = explain(
        [r.text for r in recs],
        clf,
        ["random"],
        method_params={"random": {"seed": seed}},
        check=False,  # the baseline itself; comprehensiveness is computed below
    )
    for e, r in zip(rand, recs, strict=True):
        e.label = r.label
    res = evaluate(
        exps + list(rand),
        ["comprehensiveness"],
        classifier=clf,
        agreement=False,
        example_ids=list(range(len(recs))) * 2,
    )
    rows = {r["method"]: r for r in res.summary(seed=seed)}
    p = next((t["p_value"] for t in res.tests(seed=seed)), float("nan"))
    m, base = rows[method], rows["random"]
    ok = m["mean"] > base["mean"] and p < 0.05
    text = (
        f"Faithfulness check on {len(recs)} texts: removing the words {method} ranks highest "
        f"lowers the explained probability by {m['mean']:.3f} on average (comprehensiveness, 95% CI "
        f"{m['ci_low']:.3f}–{m['ci_high']:.3f}) against {base['mean']:.3f} for random scores "
        f"(Wilcoxon p = {p:.1g}). "
    )
    text += (
        "The attributions track what the model uses."
        if ok
        else "The attributions are not clearly better than random here: do not read the word lists "
        "as what the model relies on; use a perturbation method (occlusion, lime, kernel_shap)."
    )
    return [{"text": text, "ok": bool(ok), "method": m, "random": base, "p_value": p}]
