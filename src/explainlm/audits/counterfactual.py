"""Counterfactual identity fairness: does the score change when only a person's identity changes?

Pairs of texts differ only in identity terms: the Equity Evaluation Corpus's sentences (Kiritchenko
& Mohammad 2018; same template and emotion word, the person swapped: ``she``↔``he``, ``my
daughter``↔``my son``, a female↔male name of the same race, or a European↔African-American name of
the same gender), or the user's texts with a swap list applied (:mod:`.swaps`). For each pair the
**gap** is ``score(side b) − score(side a)`` (female − male; African-American − European), the
score being the model's probability of a chosen label.

Reported: mean gap with a bootstrap CI, the Wilcoxon signed-rank and sign-flip permutation tests
(both on cluster means — a cluster is a template × emotion word in EEC, a text otherwise — since
pairs of one template are not independent; the CI resamples clusters), the largest gap, the share
of pairs whose predicted label flips, and the worst templates and emotion words.

The explanation side (:func:`identity_attribution`): the share of absolute attribution mass on
the identity words, next to their share of the words (what a model that ignored identity would
get on average), with occlusion by default (faithful by construction: it is the score change when
the word is deleted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainlm.audits.stats import (
    adjust_pvalues,
    bootstrap_mean,
    fmt_ci,
    fmt_p,
    paired_summary,
    wilson_ci,
)
from explainlm.audits.swaps import EEC_NAMES, GENDER, SwapList, identity_spans, swap_with_sides
from explainlm.datasets.fairness import EECSentence
from explainlm.errors import UserError
from explainlm.models.words import split_words

EEC_NOUN_PHRASES = [
    ("he", "she"), ("this man", "this woman"), ("this boy", "this girl"),
    ("my brother", "my sister"), ("my son", "my daughter"), ("my husband", "my wife"),
    ("my boyfriend", "my girlfriend"), ("my father", "my mother"), ("my uncle", "my aunt"),
    ("my dad", "my mom"), ("him", "her"),
]  # fmt: skip
SIDES = {"gender": ("male", "female"), "race": ("European", "African-American")}


@dataclass
class CounterfactualPair:
    key: str
    a: str
    b: str
    cluster: str
    spans_a: list[tuple[int, int]]
    spans_b: list[tuple[int, int]]
    meta: dict[str, Any] = field(default_factory=dict)


def _eec_partners(dimension: str) -> dict[str, str]:
    """Side-b person → side-a person (female → male; African-American → European)."""
    if dimension == "gender":
        out = {f: m for m, f in EEC_NOUN_PHRASES}
        for race in ("African-American", "European"):
            out.update(zip(EEC_NAMES[(race, "female")], EEC_NAMES[(race, "male")], strict=True))
        return out
    if dimension == "race":
        out = {}
        for g in ("female", "male"):
            out.update(
                zip(EEC_NAMES[("African-American", g)], EEC_NAMES[("European", g)], strict=True)
            )
        return out
    raise UserError(f"unknown EEC dimension {dimension!r}; use gender or race")


def eec_pairs(
    sentences: Sequence[EECSentence], dimension: str = "gender"
) -> list[CounterfactualPair]:
    """Minimal pairs of EEC sentences: same template and emotion word, the person swapped."""
    partners = _eec_partners(dimension)
    index = {(s.template, s.emotion_word, s.person): s for s in sentences}
    out = []
    for s in sentences:
        if s.person not in partners:
            continue
        other = index.get((s.template, s.emotion_word, partners[s.person]))
        if other is None:
            continue
        a, b = other, s
        out.append(
            CounterfactualPair(
                f"{a.id}|{b.id}",
                a.sentence,
                b.sentence,
                f"{s.template} | {s.emotion_word or '-'}",
                _eec_spans(a, dimension),
                _eec_spans(b, dimension),
                {
                    "template": s.template,
                    "emotion": s.emotion or "none",
                    "emotion_word": s.emotion_word or "-",
                    "person_a": a.person,
                    "person_b": b.person,
                },
            )
        )
    if not out:
        raise UserError(f"no EEC sentence pairs for dimension {dimension!r}")
    return out


def _eec_spans(s: EECSentence, dimension: str) -> list[tuple[int, int]]:
    spans = [s.person_span]
    if dimension == "gender":  # "found himself/herself …" is gendered too
        spans += [sp for sp in identity_spans(s.sentence, GENDER) if sp[0] >= spans[0][1]]
    return spans


def text_pairs(
    texts: Sequence[str], swaps: SwapList, ids: Sequence[str] | None = None
) -> tuple[list[CounterfactualPair], int]:
    """Pairs (side a, side b) from the user's texts with terms swapped; and how many had none.

    A text whose swapped terms are mostly of side a (e.g. male) is side a of its pair, its
    counterfactual side b; a text with as many terms of both sides is left out (no direction).
    """
    out, skipped = [], 0
    for i, t in enumerate(texts):
        new, n, sides = swap_with_sides(t, swaps)
        if n == 0 or sides.count(0) * 2 == len(sides):
            skipped += 1
            continue
        a, b = (t, new) if sides.count(0) > sides.count(1) else (new, t)
        key = ids[i] if ids is not None else f"{i:06d}"
        out.append(
            CounterfactualPair(
                key,
                a,
                b,
                key,
                identity_spans(a, swaps),
                identity_spans(b, swaps),
                {"original": "a" if a == t else "b", "swaps": n},
            )
        )
    return out, skipped


def score_chunk(classifier: Any, pairs: Sequence[CounterfactualPair], label: str) -> dict:
    """Payload per pair: the label's probability and the predicted label of both versions."""
    texts = [t for p in pairs for t in (p.a, p.b)]
    preds = classifier.predict(texts)
    out = {}
    for k, p in enumerate(pairs):
        pa, pb = preds[2 * k], preds[2 * k + 1]
        out[p.key] = {
            "a": pa.probs[label],
            "b": pb.probs[label],
            "pred_a": pa.label,
            "pred_b": pb.label,
        }
    return out


def summarise(
    pairs: Sequence[CounterfactualPair],
    payloads: Sequence[Mapping[str, Any]],
    *,
    sides: tuple[str, str],
    label: str,
    n_boot: int = 2000,
    n_perm: int = 10000,
    seed: int = 0,
    top: int = 5,
) -> dict[str, Any]:
    """Gaps, tests, flips and the worst templates / emotion words / pairs."""
    gaps = np.array([float(p["b"]) - float(p["a"]) for p in payloads])
    clusters: dict[str, list[float]] = defaultdict(list)
    for pr, g in zip(pairs, gaps, strict=True):
        clusters[pr.cluster].append(g)
    cluster_means = np.array([np.mean(v) for v in clusters.values()])
    test = paired_summary(cluster_means, n_boot=n_boot, n_perm=n_perm, seed=seed)
    flips = int(sum(p["pred_a"] != p["pred_b"] for p in payloads))
    worst = sorted(range(len(pairs)), key=lambda i: -abs(gaps[i]))[:top]
    out: dict[str, Any] = {
        "label": label,
        "sides": list(sides),
        "n_pairs": len(pairs),
        "n_clusters": len(clusters),
        "mean_gap": float(gaps.mean()),
        "mean_gap_ci": test["ci"],
        "mean_abs_gap": float(np.abs(gaps).mean()),
        "max_abs_gap": float(np.abs(gaps).max()),
        "p_wilcoxon": test["p_wilcoxon"],
        "p_permutation": test["p_permutation"],
        "flip_rate": flips / len(pairs),
        "flip_rate_ci": list(wilson_ci(flips, len(pairs))),
        "flips": flips,
        "mean_score": {sides[0]: float(np.mean([p["a"] for p in payloads])),
                       sides[1]: float(np.mean([p["b"] for p in payloads]))},
        "worst_pairs": [
            {"a": pairs[i].a, "b": pairs[i].b, "gap": float(gaps[i]), **pairs[i].meta}
            for i in worst
        ],
    }  # fmt: skip
    for field_name in ("template", "emotion_word", "emotion"):
        if all(field_name in p.meta for p in pairs):
            out[f"by_{field_name}"] = _by(pairs, gaps, field_name, n_boot, seed)[: top * 2]
    out["conclusions"] = _conclusions(out)
    return out


def _by(
    pairs: Sequence[CounterfactualPair], gaps: np.ndarray, name: str, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for p, g in zip(pairs, gaps, strict=True):
        groups[str(p.meta[name])].append(float(g))
    rows = []
    for key, vals in groups.items():
        mean, lo, hi = bootstrap_mean(vals, n_boot=n_boot, seed=seed)
        rows.append({name: key, "n": len(vals), "mean_gap": mean, "ci": [lo, hi],
                     "max_abs_gap": float(np.max(np.abs(vals)))})  # fmt: skip
    return sorted(rows, key=lambda r: -abs(r["mean_gap"]))


def _conclusions(s: Mapping[str, Any]) -> list[str]:
    a, b = s["sides"]
    sig = min(s["p_wilcoxon"], s["p_permutation"]) < 0.05
    direction = f"higher for {b}" if s["mean_gap"] > 0 else f"higher for {a}"
    lines = [
        f"P({s['label']}) is on average {fmt_ci(s['mean_gap'], s['mean_gap_ci'], 3)} "
        f"{direction if sig else 'different'} ({b} − {a}) over {s['n_pairs']} pairs: "
        + ("a significant gap" if sig else "no significant gap")
        + f", Wilcoxon {fmt_p(s['p_wilcoxon'])}, permutation {fmt_p(s['p_permutation'])} "
        f"(on {s['n_clusters']} cluster means).",
        f"The largest gap is {s['max_abs_gap']:.3f}; the predicted label flips in "
        f"{100 * s['flip_rate']:.1f}% [{100 * s['flip_rate_ci'][0]:.1f}, "
        f"{100 * s['flip_rate_ci'][1]:.1f}] of pairs.",
    ]
    for key in ("template", "emotion_word"):
        rows = s.get(f"by_{key}")
        if rows:
            r = rows[0]
            lines.append(
                f"Worst {key.replace('_', ' ')}: {r[key]!r} (mean gap "
                f"{fmt_ci(r['mean_gap'], r['ci'], 3)}, n = {r['n']})."
            )
    return lines


# ------------------------------------------------------------------------ attribution side
def identity_shares(
    text: str, spans: Sequence[tuple[int, int]], scores: Sequence[float]
) -> dict[str, float] | None:
    """Share of |attribution| on the words inside ``spans`` and their share of the words."""
    words = split_words(text)
    if len(words) != len(scores) or not words:
        return None
    inside = np.array([any(s < e2 and e > s2 for s2, e2 in spans) for s, e in words])
    if not inside.any():
        return None
    mass = np.abs(np.asarray(scores, dtype=np.float64))
    total = float(mass.sum())
    return {
        "share": float(mass[inside].sum() / total) if total > 0 else float("nan"),
        "uniform_share": float(inside.mean()),
        "signed": float(np.asarray(scores)[inside].sum()),
    }


def identity_attribution(
    classifier: Any,
    texts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    sides: Sequence[str],
    *,
    label: str,
    method: str = "occlusion",
    max_batch_tokens: int | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Attribution mass on identity words, overall and per side, with bootstrap CIs."""
    rows = identity_rows(classifier, texts, spans, sides, label=label, method=method,
                         max_batch_tokens=max_batch_tokens)  # fmt: skip
    kept = [r for r in rows if r is not None]
    return summarise_shares(kept, method=method, label=label, n_boot=n_boot, seed=seed)


def identity_rows(
    classifier: Any,
    texts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    sides: Sequence[str],
    *,
    label: str,
    method: str = "occlusion",
    max_batch_tokens: int | None = None,
) -> list[dict[str, Any] | None]:
    """Per text (explained together, in one call): its identity shares and side, or ``None``
    when no explained word is an identity word (the model work of :func:`identity_attribution`)."""
    from explainlm.attribution import explain

    kw = {} if max_batch_tokens is None else {"max_batch_tokens": max_batch_tokens}
    exps = explain(list(texts), classifier, [method], target=label, **kw)
    rows: list[dict[str, Any] | None] = []
    for e, sp, side in zip(exps, spans, sides, strict=True):
        r = identity_shares(e.text, sp, e.word_scores)
        rows.append(None if r is None else {**r, "side": side})
    return rows


def summarise_shares(
    rows: Sequence[Mapping[str, Any]],
    *,
    method: str,
    label: str,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean share vs uniform share (overall and per side), the ratio and a paired test."""
    if not rows:
        raise UserError("no explained text contains an identity word")
    share = np.array([r["share"] for r in rows])
    uniform = np.array([r["uniform_share"] for r in rows])
    test = paired_summary(share - uniform, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {
        "method": method,
        "label": label,
        "n": len(rows),
        "share": list(bootstrap_mean(share, n_boot=n_boot, seed=seed)),
        "uniform_share": float(uniform.mean()),
        "ratio": float(np.nanmean(share) / uniform.mean()),
        "excess": test,
        "by_side": {},
    }
    for side in sorted({r["side"] for r in rows}):
        sel = [r for r in rows if r["side"] == side]
        out["by_side"][side] = {
            "n": len(sel),
            "share": list(bootstrap_mean([r["share"] for r in sel], n_boot=n_boot, seed=seed)),
            "uniform_share": float(np.mean([r["uniform_share"] for r in sel])),
            "signed": list(bootstrap_mean([r["signed"] for r in sel], n_boot=n_boot, seed=seed)),
        }
    m, lo, hi = out["share"]
    out["conclusion"] = (
        f"{method}: identity words carry {100 * m:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] of the "
        f"attribution mass for P({label}) while being {100 * out['uniform_share']:.1f}% of the "
        f"words ({out['ratio']:.2f}x their share; excess {fmt_p(test['p_wilcoxon'])}, Wilcoxon, "
        f"n = {len(rows)}): "
        + ("the model uses them more than an average word." if out["ratio"] > 1 and
           test["p_wilcoxon"] < 0.05 else "no evidence that it uses them more than an average word.")
    )  # fmt: skip
    return out


def adjust_family(summaries: Sequence[dict[str, Any]], correction: str) -> None:
    """Holm/BH-adjust the Wilcoxon p-values of several counterfactual summaries together."""
    adjusted = adjust_pvalues([s["p_wilcoxon"] for s in summaries], correction)
    for s, p in zip(summaries, adjusted, strict=True):
        s["p_adjusted"] = p
