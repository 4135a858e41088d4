"""Bias in Bios (De-Arteaga et al. 2019): occupation classification of biographies, by gender.

For a classifier of the five medical occupations:

* **TPR gap** per occupation: ``TPR_female − TPR_male`` (the share of that occupation's bios
  classified correctly, per gender), with a stratified-bootstrap CI (positives resampled within
  each gender) and a permutation p-value, Holm-adjusted over occupations;
* **attribution mass on gendered words** (pronouns, titles, gendered nouns and names of the
  gender swap list) with occlusion, overall and by gender;
* **counterfactual gender swap** of every bio: the change in P(gold occupation) and the share of
  flipped predictions;
* **plausibility by gender** (Eberle et al. 2023 rationales): token F1 and AUPRC of occlusion
  explanations against the standard ("why this occupation") and contrastive ("why this and not
  the foil", explained as the logit difference) human rationales, per gender.

Only 339 bios exist (about 134 in the test split; some occupation × gender cells have a handful of
bios, e.g. female surgeons or male nurses), so intervals are wide and several cells are too small
for any interval at all; the report says which.

:func:`compare_models` (:mod:`explainlm.audits.bios_mitigation`) is the paired before/after
comparison of a mitigation (same bios, two models): accuracy, TPR gaps, counterfactual gaps and
flips, attribution mass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainlm.audits.bios_mitigation import compare_models
from explainlm.audits.counterfactual import identity_shares, text_pairs
from explainlm.audits.stats import (
    adjust_pvalues,
    bootstrap_mean,
    fmt_ci,
    fmt_p,
    paired_summary,
    percentile_ci,
    wilson_ci,
)
from explainlm.audits.swaps import GENDER, identity_spans
from explainlm.datasets.biosbias import GENDERS
from explainlm.datasets.fairness import Bio, BioRationale

__all__ = [
    "GENDERS",
    "compare_models",
    "explain_rationale",
    "plausibility_by_gender",
    "plausibility_rows",
    "plausibility_sets",
    "predict_bios",
    "summarise_bios",
    "tpr_gaps",
]


def predict_bios(classifier: Any, bios: Sequence[Bio], method: str = "occlusion") -> list[dict]:
    """Per bio: prediction, P(gold), the gender-swapped P(gold) and prediction, identity shares."""
    from explainlm.attribution import explain

    texts = [b.text for b in bios]
    preds = classifier.predict(texts)
    pairs, _ = text_pairs(texts, GENDER, ids=[str(i) for i in range(len(texts))])
    swapped = {int(p.key): (p.b if p.meta["original"] == "a" else p.a) for p in pairs}
    cf_texts = [swapped.get(i, t) for i, t in enumerate(texts)]
    cf = classifier.predict(cf_texts)
    exps = explain(texts, classifier, [method], target=None)
    out = []
    for b, p, c, e in zip(bios, preds, cf, exps, strict=True):
        shares = identity_shares(b.text, identity_spans(b.text, GENDER), e.word_scores)
        out.append(
            {
                "id": b.id,
                "gender": b.gender,
                "occupation": b.occupation,
                "predicted": p.label,
                "p_gold": p.probs.get(b.occupation, float("nan")),
                "cf_p_gold": c.probs.get(b.occupation, float("nan")),
                "cf_predicted": c.label,
                "swapped": c.text != b.text,
                "identity_share": None if shares is None else shares["share"],
                "identity_uniform": None if shares is None else shares["uniform_share"],
            }
        )
    return out


def tpr_gaps(
    rows: Sequence[Mapping[str, Any]],
    occupations: Sequence[str],
    *,
    min_group_size: int = 5,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    correction: str = "holm",
) -> list[dict[str, Any]]:
    """``TPR_female − TPR_male`` per occupation, CI by resampling positives within each gender."""
    rng = np.random.default_rng(seed)
    out = []
    for occ in occupations:
        entry: dict[str, Any] = {"occupation": occ, "gap": float("nan"), "gap_ci": None,
                                 "p_value": None}  # fmt: skip
        hits = {}
        for g in GENDERS:
            pos = [r for r in rows if r["occupation"] == occ and r["gender"] == g]
            k = sum(r["predicted"] == occ for r in pos)
            n = len(pos)
            cell: dict[str, Any] = {"n": n, "value": k / n if n else float("nan"), "ci": None}
            if n >= min_group_size:
                cell["ci"] = list(wilson_ci(k, n))
            else:
                cell["note"] = f"too few ({n} < {min_group_size}) for a confidence interval"
            entry[g] = cell
            hits[g] = (k, n)
        (kf, nf), (km, nm) = hits["female"], hits["male"]
        if nf and nm:
            entry["gap"] = kf / nf - km / nm
        if nf >= min_group_size and nm >= min_group_size:
            boots = rng.binomial(nf, kf / nf, n_boot) / nf - rng.binomial(nm, km / nm, n_boot) / nm
            entry["gap_ci"] = list(percentile_ci(boots))
            entry["p_value"] = _tpr_permutation_p(kf, nf, km, nm, n_perm, rng)
        out.append(entry)
    adjusted = adjust_pvalues([e["p_value"] for e in out], correction)
    for e, p in zip(out, adjusted, strict=True):
        e["p_adjusted"] = p
    return out


def _tpr_permutation_p(
    kf: int, nf: int, km: int, nm: int, n_perm: int, rng: np.random.Generator
) -> float:
    """Permutation test of equal TPRs: gender labels shuffled among the occupation's bios.

    With fixed margins, the number of correct female bios is hypergeometric, so the permutation
    distribution is drawn exactly (no loop over permutations)."""
    observed = abs(kf / nf - km / nm)
    draws = rng.hypergeometric(kf + km, nf + nm - kf - km, nf, size=n_perm)
    stat = np.abs(draws / nf - (kf + km - draws) / nm)
    return float((1 + np.sum(stat >= observed - 1e-12)) / (1 + n_perm))  # fmt: skip


def summarise_bios(
    rows: Sequence[Mapping[str, Any]],
    occupations: Sequence[str],
    *,
    min_group_size: int = 5,
    n_boot: int = 2000,
    seed: int = 0,
    correction: str = "holm",
) -> dict[str, Any]:
    gold = [r["occupation"] for r in rows]
    pred = [r["predicted"] for r in rows]
    correct = np.array([a == b for a, b in zip(gold, pred, strict=True)], dtype=float)
    gaps = tpr_gaps(rows, occupations, min_group_size=min_group_size, n_boot=n_boot, seed=seed,
                    correction=correction)  # fmt: skip
    acc_by_gender = {}
    for g in GENDERS:
        sel = correct[[r["gender"] == g for r in rows]]
        acc_by_gender[g] = {"n": int(sel.size), "value": float(sel.mean()) if sel.size else None,
                            "ci": list(wilson_ci(int(sel.sum()), int(sel.size)))}  # fmt: skip
    cf = [r for r in rows if r["swapped"]]
    cf_gap = np.array([r["cf_p_gold"] - r["p_gold"] for r in cf])
    flips = sum(r["cf_predicted"] != r["predicted"] for r in cf)
    shares = [r for r in rows if r["identity_share"] is not None]
    doc: dict[str, Any] = {
        "n": len(rows),
        "accuracy": float(correct.mean()),
        "accuracy_ci": list(wilson_ci(int(correct.sum()), len(rows))),
        "accuracy_by_gender": acc_by_gender,
        "tpr_by_occupation": gaps,
        "counterfactual": {
            "n": len(cf),
            "mean_abs_change": float(np.abs(cf_gap).mean()) if cf else None,
            "change": paired_summary(cf_gap, n_boot=n_boot, seed=seed) if cf else None,
            "flips": int(flips),
            "flip_rate": flips / len(cf) if cf else None,
            "flip_rate_ci": list(wilson_ci(int(flips), len(cf))),
        },
        "attribution": _share_summary(shares, n_boot, seed),
        "correction": correction,
    }
    doc["conclusions"] = _conclusions(doc)
    return doc


def _share_summary(rows: Sequence[Mapping[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    if not rows:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(rows), "by_gender": {}}
    share = [r["identity_share"] for r in rows]
    out["share"] = list(bootstrap_mean(share, n_boot=n_boot, seed=seed))
    out["uniform_share"] = float(np.mean([r["identity_uniform"] for r in rows]))
    for g in GENDERS:
        sel = [r["identity_share"] for r in rows if r["gender"] == g]
        out["by_gender"][g] = list(bootstrap_mean(sel, n_boot=n_boot, seed=seed)) + [len(sel)]
    return out


def _conclusions(doc: Mapping[str, Any]) -> list[str]:
    lines = [
        f"Accuracy {fmt_ci(doc['accuracy'], doc['accuracy_ci'])} on {doc['n']} test bios "
        f"(female {fmt_ci(doc['accuracy_by_gender']['female']['value'], doc['accuracy_by_gender']['female']['ci'])}, "
        f"male {fmt_ci(doc['accuracy_by_gender']['male']['value'], doc['accuracy_by_gender']['male']['ci'])})."
    ]  # fmt: skip
    for e in doc["tpr_by_occupation"]:
        if e["gap_ci"] is None:
            lines.append(
                f"{e['occupation']}: TPR female {e['female']['value']:.2f} (n={e['female']['n']}), "
                f"male {e['male']['value']:.2f} (n={e['male']['n']}): too few bios for an "
                "interval or test."
            )
        else:
            lines.append(
                f"{e['occupation']}: TPR gap (female − male) {fmt_ci(e['gap'], e['gap_ci'])}, "
                f"{fmt_p(e['p_adjusted'])} ({doc['correction']}-adjusted)."
            )
    cf = doc["counterfactual"]
    if cf["n"]:
        lines.append(
            f"Swapping gendered words changes P(gold occupation) by "
            f"{cf['mean_abs_change']:.3f} on average (|change|) and flips "
            f"{100 * cf['flip_rate']:.1f}% of {cf['n']} predictions."
        )
    att = doc["attribution"]
    if att.get("n"):
        m, lo, hi = att["share"]
        lines.append(
            f"Gendered words carry {100 * m:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] of the "
            f"occlusion attribution mass while being {100 * att['uniform_share']:.1f}% of the words."
        )
    return lines


# ---------------------------------------------------------------------------- plausibility
def plausibility_by_gender(
    classifier: Any,
    rationales: Sequence[BioRationale],
    *,
    method: str = "occlusion",
    metrics: Sequence[str] = ("token_f1", "auprc"),
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Plausibility of explanations against human rationales, per rationale kind and gender."""
    out = []
    for kind, sel in plausibility_sets(classifier.labels, rationales):
        exps = [explain_rationale(classifier, r, method) for r in sel]
        out += plausibility_rows(kind, sel, exps, metrics=metrics, n_boot=n_boot, seed=seed)
    return out


def plausibility_sets(
    labels: Sequence[str], rationales: Sequence[BioRationale]
) -> list[tuple[str, list[BioRationale]]]:
    """Per rationale kind, the rationales to explain: those whose occupation (and foil) the model
    has as labels (no model needed: the model's labels suffice)."""
    out = []
    for kind in ("standard", "contrastive"):
        sel = [r for r in rationales if r.kind == kind and (kind == "standard" or r.foil)]
        sel = [r for r in sel if r.occupation in labels and
               (r.foil is None or r.foil in labels)]  # fmt: skip
        if sel:
            out.append((kind, sel))
    return out


def explain_rationale(classifier: Any, r: BioRationale, method: str = "occlusion") -> Any:
    """The explanation of one rationale's bio, alone: of its occupation, or (contrastive) of the
    logit difference occupation − foil."""
    from explainlm.attribution import explain

    contrast = f"{r.occupation}:{r.foil}" if r.kind == "contrastive" else None
    target = None if contrast else r.occupation
    return explain([r.text], classifier, [method], target=target, contrast=contrast)[0]


def plausibility_rows(
    kind: str,
    rationales: Sequence[BioRationale],
    explanations: Sequence[Any],
    *,
    metrics: Sequence[str] = ("token_f1", "auprc"),
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per gender and metric: mean with a bootstrap CI, and the female − male difference."""
    from explainlm.evaluation import evaluate

    pairs = [(r, e) for r, e in zip(rationales, explanations, strict=True)
             if len(e.word_scores) == len(r.rationale)]  # fmt: skip  # a truncated bio: fewer words
    dropped = len(rationales) - len(pairs)
    if not pairs:
        return []
    sel, exps = [r for r, _ in pairs], [e for _, e in pairs]
    res = evaluate(exps, list(metrics), rationales=[r.rationale for r in sel],
                   groups=[r.gender for r in sel], agreement=False)  # fmt: skip
    out = []
    for metric in metrics:
        vals = {g: [x["value"] for x in res.rows if x["metric"] == metric and x["group"] == g]
                for g in GENDERS}  # fmt: skip
        for g in GENDERS:
            mean, lo, hi = bootstrap_mean(vals[g], n_boot=n_boot, seed=seed)
            out.append({"rationale": kind, "gender": g, "metric": metric,
                        "n": int(np.isfinite(vals[g]).sum()), "mean": mean, "ci": [lo, hi],
                        "truncated_left_out": dropped})  # fmt: skip
        diff = _two_sample_p(vals["female"], vals["male"], seed)
        out.append({"rationale": kind, "gender": "female − male", "metric": metric,
                    "n": None, "mean": diff[0], "ci": diff[1], "p_value": diff[2]})  # fmt: skip
    return out


def _two_sample_p(a: Sequence[float], b: Sequence[float], seed: int) -> tuple[float, list, float]:
    """Difference of means, bootstrap CI (each sample resampled) and Mann-Whitney p."""
    from scipy.stats import mannwhitneyu

    x = np.asarray(a, float)[np.isfinite(a)]
    y = np.asarray(b, float)[np.isfinite(b)]
    if x.size < 2 or y.size < 2:
        return float("nan"), [float("nan")] * 2, float("nan")
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, x.size, (2000, x.size))].mean(1)
    by = y[rng.integers(0, y.size, (2000, y.size))].mean(1)
    return (
        float(x.mean() - y.mean()),
        list(percentile_ci(bx - by)),
        float(mannwhitneyu(x, y).pvalue),
    )
