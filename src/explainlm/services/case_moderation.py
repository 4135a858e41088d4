"""The content-moderation steps of the case studies: plausibility of the explanations against the
annotators' rationales (``benchmark``), and identity-term fairness — false-positive-rate gaps
between posts that mention different groups (``audit fairness``) and the share of attribution mass
on the group mentions themselves (``explain``).

A post's **group** is the first identity group whose terms it mentions (:data:`IDENTITY_TERMS`,
whole lower-cased words), or ``none``. HateXplain's own target annotations are not in the ERASER
form of the data, so the groups come from the words of the post.

>>> group_of("the muslims and the jews are here"), group_of("a nice day")
('religion', 'none')
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explainlm.services.base import ServiceContext
from explainlm.services.case_steps import RANDOM, sub, trusted_method

IDENTITY_TERMS: dict[str, tuple[str, ...]] = {
    "religion": ("muslim", "muslims", "islam", "islamic", "jew", "jews", "jewish", "christian",
                 "christians", "moslem", "moslems"),
    "race": ("black", "blacks", "white", "whites", "african", "africans", "asian", "asians",
             "arab", "arabs", "hispanic", "hispanics", "mexican", "mexicans"),
    "gender": ("woman", "women", "girl", "girls", "female", "females", "feminist", "feminists"),
    "sexuality": ("gay", "gays", "lesbian", "lesbians", "homosexual", "homosexuals", "queer",
                  "trans", "transgender"),
    "origin": ("immigrant", "immigrants", "refugee", "refugees", "migrant", "migrants"),
}  # fmt: skip
TERM_GROUP = {t: g for g, terms in IDENTITY_TERMS.items() for t in terms}


def group_of(text: str) -> str:
    for word in text.lower().split():
        if word in TERM_GROUP:
            return TERM_GROUP[word]
    return "none"


def plausibility_section(ctx: ServiceContext, req: Any, dataset: str) -> dict[str, Any]:
    """Token F1 and AUPRC of the trusted method's explanations against human rationales."""
    from explainlm.services import benchmark

    breq = benchmark.BenchmarkRequest(
        model=req.model, dataset=dataset, split="test", methods=[trusted_method(), RANDOM],
        metrics=["token_f1", "auprc"], limit=req.faithfulness_limit, seed=req.seed,
        n_boot=max(req.n_boot, 100),
    )  # fmt: skip
    doc = benchmark.run(breq, sub(ctx)).to_json_doc()
    return {"run_id": doc["run_id"], "n": doc["n"], "table": doc["table"], "tests": doc["tests"]}


def fairness_section(
    ctx: ServiceContext, req: Any, examples: Sequence[Any], folder: str
) -> dict[str, Any]:
    """The group-fairness audit of the toxic label over the posts' identity groups."""
    from explainlm.services import audit

    path = Path(folder) / "identity-groups.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "group"])
        for e in examples:
            w.writerow([e.text, e.label, group_of(e.text)])
    areq = audit.build_request(
        audit.FairnessAuditRequest, data=str(path), group_columns=["group"], model=req.model,
        positive_labels=["toxic"], min_group_size=10, n_boot=req.n_boot, n_perm=req.n_perm,
        seed=req.seed,
    )  # fmt: skip
    from explainlm.errors import UserError

    try:
        res = audit.run(areq, sub(ctx))
    except UserError as e:  # too few posts per group in this slice: say so in the report
        return {"run_id": None, "file": str(path), "document": {"conclusions": []},
                "not_run": str(e)}  # fmt: skip
    return {"run_id": res.run_id, "file": str(path), "document": res.report}


def identity_mass(explanations: Sequence[Any]) -> list[dict[str, Any]]:
    """Per explanation: share of |attribution| on identity words, and their share of the words."""
    rows = []
    for e in explanations:
        words = [w.lower() for w in e.words]
        mask = np.array([w in TERM_GROUP for w in words])
        scores = np.abs(np.asarray(e.word_scores, dtype=float))
        if not mask.any() or scores.sum() == 0:
            continue
        rows.append({"mass": float(scores[mask].sum() / scores.sum()),
                     "share": float(mask.mean())})  # fmt: skip
    return rows


def mass_section(ctx: ServiceContext, req: Any, examples: Sequence[Any]) -> dict[str, Any]:
    """Explain posts that mention a group: is the decision carried by the group mention itself?"""
    from scipy.stats import wilcoxon

    from explainlm.audits.stats import bootstrap_mean
    from explainlm.services import explain

    texts = [e.text for e in examples if group_of(e.text) != "none"][: req.importance_limit]
    res = explain.run(explain.ExplainRequest(texts=texts, model=req.model,
                                             methods=[trusted_method()]), sub(ctx))  # fmt: skip
    rows = identity_mass(res.explanations)
    excess = np.array([r["mass"] - r["share"] for r in rows])
    doc: dict[str, Any] = {"run_id": res.run_id, "n": len(rows), "method": trusted_method()}
    if len(rows) >= 2:
        doc["mass"] = bootstrap_mean(np.array([r["mass"] for r in rows]), n_boot=req.n_boot,
                                     seed=req.seed)  # fmt: skip
        doc["share"] = float(np.mean([r["share"] for r in rows]))
        doc["excess"] = bootstrap_mean(excess, n_boot=req.n_boot, seed=req.seed)
        doc["p_value"] = float(wilcoxon(excess).pvalue) if np.any(excess != 0) else 1.0
    return doc
