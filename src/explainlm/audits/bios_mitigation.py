"""Did a mitigation work on Bias in Bios? The paired before/after comparison of two models on the
same bios (rows from :func:`explainlm.audits.bios.predict_bios`): accuracy (exact McNemar), TPR gaps
per occupation (paired bootstrap), counterfactual gender-swap gaps and flips, and the attribution
share of gendered words (Wilcoxon)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from explainlm.audits.stats import binomial_p, fmt_ci, fmt_p, paired_summary, percentile_ci
from explainlm.datasets.biosbias import GENDERS


def compare_models(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    occupations: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    min_group_size: int = 5,
) -> dict[str, Any]:
    """Paired before/after comparison on the same bios (rows from :func:`predict_bios`); an
    occupation with fewer than ``min_group_size`` bios of a gender gets no interval."""
    ok_b = np.array([r["predicted"] == r["occupation"] for r in before], dtype=float)
    ok_a = np.array([r["predicted"] == r["occupation"] for r in after], dtype=float)
    acc = paired_summary(ok_a - ok_b, n_boot=n_boot, seed=seed)
    gain, loss = int(((ok_a == 1) & (ok_b == 0)).sum()), int(((ok_a == 0) & (ok_b == 1)).sum())
    acc["p_mcnemar"] = binomial_p(gain, gain + loss) if gain + loss else 1.0
    cf_b = np.array([abs(r["cf_p_gold"] - r["p_gold"]) for r in before])
    cf_a = np.array([abs(r["cf_p_gold"] - r["p_gold"]) for r in after])
    flips_b = np.array([r["cf_predicted"] != r["predicted"] for r in before], dtype=float)
    flips_a = np.array([r["cf_predicted"] != r["predicted"] for r in after], dtype=float)
    sh = [(b["identity_share"], a["identity_share"]) for b, a in zip(before, after, strict=True)
          if b["identity_share"] is not None and a["identity_share"] is not None]  # fmt: skip
    doc: dict[str, Any] = {
        "n": len(before),
        "accuracy_before": float(ok_b.mean()),
        "accuracy_after": float(ok_a.mean()),
        "accuracy_change": acc,
        "counterfactual_abs_change": paired_summary(cf_a - cf_b, n_boot=n_boot, seed=seed),
        "flip_rate_before": float(flips_b.mean()),
        "flip_rate_after": float(flips_a.mean()),
        "flip_rate_change": paired_summary(flips_a - flips_b, n_boot=n_boot, seed=seed),
        "identity_share_change": paired_summary([a - b for b, a in sh], n_boot=n_boot, seed=seed)
        if sh
        else None,
        "tpr_gap_change": _paired_tpr_gaps(
            before, after, occupations, n_boot, seed, min_group_size
        ),
    }
    doc["conclusions"] = _compare_conclusions(doc)
    return doc


def _paired_tpr_gaps(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    occupations: Sequence[str],
    n_boot: int,
    seed: int,
    min_group_size: int = 5,
) -> list[dict[str, Any]]:
    """Change of |TPR gap| per occupation; CI from resampling bios jointly (paired) per gender
    (none when a gender has fewer than ``min_group_size`` bios: the interval would mislead)."""
    rng = np.random.default_rng(seed)
    out = []
    for occ in occupations:
        idx = {g: [i for i, r in enumerate(before) if r["occupation"] == occ and r["gender"] == g]
               for g in GENDERS}  # fmt: skip
        if not all(idx.values()):
            out.append({"occupation": occ, "note": "a gender has no bios of this occupation"})
            continue
        hit_b = {
            g: np.array([before[i]["predicted"] == occ for i in idx[g]], float) for g in GENDERS
        }
        hit_a = {
            g: np.array([after[i]["predicted"] == occ for i in idx[g]], float) for g in GENDERS
        }
        gap_b = abs(hit_b["female"].mean() - hit_b["male"].mean())
        gap_a = abs(hit_a["female"].mean() - hit_a["male"].mean())
        row = _gap_change_row(occ, idx, hit_b, hit_a, gap_b, gap_a, n_boot, rng)
        small = [g for g in GENDERS if len(idx[g]) < min_group_size]
        if small:
            del row["change_ci"]
            row["note"] = (f"too few bios ({', '.join(f'{len(idx[g])} {g}' for g in small)} "
                           f"< {min_group_size}) for an interval")  # fmt: skip
        out.append(row)
    return out


def _gap_change_row(
    occ: str,
    idx: Mapping[str, list[int]],
    hit_b: Mapping[str, np.ndarray],
    hit_a: Mapping[str, np.ndarray],
    gap_b: float,
    gap_a: float,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    draws = {g: rng.integers(0, len(idx[g]), (n_boot, len(idx[g]))) for g in GENDERS}
    tb = hit_b["female"][draws["female"]].mean(1) - hit_b["male"][draws["male"]].mean(1)
    ta = hit_a["female"][draws["female"]].mean(1) - hit_a["male"][draws["male"]].mean(1)
    return {
        "occupation": occ,
        "n_female": len(idx["female"]),
        "n_male": len(idx["male"]),
        "abs_gap_before": float(gap_b),
        "abs_gap_after": float(gap_a),
        "change": float(gap_a - gap_b),
        "change_ci": list(percentile_ci(np.abs(ta) - np.abs(tb))),
    }


def _compare_conclusions(doc: Mapping[str, Any]) -> list[str]:
    acc = doc["accuracy_change"]
    cf = doc["counterfactual_abs_change"]
    fl = doc["flip_rate_change"]
    lines = [
        f"Accuracy {doc['accuracy_before']:.3f} → {doc['accuracy_after']:.3f}: change "
        f"{fmt_ci(acc['mean'], acc['ci'], 3)}, exact McNemar {fmt_p(acc['p_mcnemar'])} "
        f"(n = {doc['n']} paired bios).",
        f"Counterfactual |ΔP(gold)| under a gender swap changes by {fmt_ci(cf['mean'], cf['ci'], 3)}"
        f" (Wilcoxon {fmt_p(cf['p_wilcoxon'])}); flip rate {doc['flip_rate_before']:.3f} → "
        f"{doc['flip_rate_after']:.3f} ({fmt_ci(fl['mean'], fl['ci'], 3)}).",
    ]
    sh = doc.get("identity_share_change")
    if sh:
        lines.append(
            f"Attribution share of gendered words changes by {fmt_ci(sh['mean'], sh['ci'], 3)} "
            f"(Wilcoxon {fmt_p(sh['p_wilcoxon'])})."
        )
    for r in doc["tpr_gap_change"]:
        if "change" not in r:
            continue
        head = f"{r['occupation']}: |TPR gap| {r['abs_gap_before']:.2f} → {r['abs_gap_after']:.2f}"
        if "change_ci" in r:
            lines.append(
                f"{head} (change {fmt_ci(r['change'], r['change_ci'])}; n = {r['n_female']} "
                f"female, {r['n_male']} male)."
            )
        else:
            lines.append(f"{head}: {r['note']}.")
    return lines
