"""How far to trust an attribution, in numbers and words: the verdict of its faithfulness check,
the colour strength of its heatmap, the agreement between methods, and the glossary of the terms
the reports show.

The verdict reads the check computed with every explanation (:mod:`explainlm.check`: ERASER
comprehensiveness over removal fractions, against a random ranking of the same text):

* ``passes``: comprehensiveness − random comprehensiveness ≥ :func:`min_gain` (0.02 for a
  probability target, 0.05 for logits, log-odds and log-probs) and comprehensiveness > 0;
* ``fails``: otherwise: removing the method's top units changes the target no more than removing
  random ones, so its ranking is no evidence of why the model decided;
* ``undecided``: the text has one unit (every ranking is the same; the check cannot judge);
* ``unchecked``: the check was turned off.

``weak`` (a passing check): removing the top 20% of units lowers the target by less than
:func:`weak_effect` (0.05 in probability, 0.25 otherwise): the prediction barely depends on them.

>>> check = {"comprehensiveness": 0.30, "comprehensiveness_by_k": [0.2, 0.4], "k": [1, 2],
...          "random": {"comprehensiveness": 0.05}}
>>> v = verdict(check, "prob", 8)
>>> v["status"], round(v["gain"], 2), v["weak"], v["drop_top20"]
('passes', 0.25, False, 0.4)
>>> verdict({**check, "comprehensiveness": 0.06}, "prob", 8)["status"]
'fails'
>>> round(color_strength(check, "prob", 8), 2)   # removing the top 20% lowers p by 0.4
1.0
>>> round(color_strength({**check, "comprehensiveness_by_k": [0.01, 0.02]}, "prob", 8), 2)
0.08
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

REFERENCE_EFFECT = {"probability": 0.25, "other": 1.0}  # a drop this large gets full colour
GLOSSARY = {
    "prob": "the model's probability of the explained label (0–1)",
    "p(label)": "the model's probability of the label",
    "δ": "integrated gradients' completeness gap: Σ scores − (f(text) − f(baseline)); near 0 is good",
    "token_logprob": "log-probability of each generated token (0 = certain; −2.3 = 10%)",
    "token_prob": "probability of each generated token (0–1)",
    "sequence_logprob": "log-probability of the whole continuation (sum over its tokens)",
    "log p": "log-probability of the generated token (0 = certain; −2.3 = 10%)",
    "comprehensiveness": (
        "how much the prediction drops when the method's top 10/20/50% of words are removed "
        "(higher = the method found what matters)"
    ),
    "sufficiency": (
        "how much the prediction drops when only those top words are kept (lower = they suffice)"
    ),
    "random": "the same drop for words picked at random: a faithful method must beat it",
    "Spearman ρ": "rank agreement of two methods' scores (1 = same order, 0 = unrelated)",
    "top-k overlap": "how many of the two methods' top words are the same",
}


def probability_target(target: str) -> bool:
    """``prob``, ``prob:LABEL``, ``token_prob`` (not logits, log-odds, contrasts or log-probs)."""
    return target.split(":")[0] in ("prob", "token_prob")


def min_gain(target: str) -> float:
    """How far comprehensiveness must exceed the random ranking's for the check to pass."""
    return 0.02 if probability_target(target) else 0.05


def weak_effect(target: str) -> float:
    """A passing check whose largest measured drop is below this is weak evidence."""
    return 0.05 if probability_target(target) else 0.25


def drop_at(check: Mapping[str, Any], n_features: int, fraction: float = 0.2) -> float | None:
    """The drop of the target when the top ``fraction`` of units is removed (from the check)."""
    ks, drops = check.get("k") or [], check.get("comprehensiveness_by_k") or []
    if not ks or n_features < 1:
        return None
    k = min(n_features, max(1, math.ceil(fraction * n_features - 1e-9)))
    best = min(range(len(ks)), key=lambda i: (abs(ks[i] - k), i))
    return float(drops[best])


def verdict(check: Mapping[str, Any] | None, target: str, n_features: int) -> dict[str, Any]:
    """``{"status", "gain", "weak", "drop_top20", "random_top20", "k_top20"}`` of one check."""
    if check is None:
        return {"status": "unchecked", "gain": None, "weak": False, "drop_top20": None}
    comp = check.get("comprehensiveness")
    rand = (check.get("random") or {}).get("comprehensiveness")
    gain = None if comp is None else comp - (rand or 0.0)
    out: dict[str, Any] = {
        "gain": gain,
        "drop_top20": drop_at(check, n_features),
        "k_top20": min(n_features, max(1, math.ceil(0.2 * n_features - 1e-9))),
        "random_comprehensiveness": rand,
        "weak": False,
    }
    if n_features <= 1 or comp is None:
        out["status"] = "undecided"
        return out
    out["status"] = (
        "passes" if gain is not None and gain >= min_gain(target) and comp > 0 else "fails"
    )
    drop = out["drop_top20"] if out["drop_top20"] is not None else comp
    out["weak"] = out["status"] == "passes" and drop < weak_effect(target)
    return out


def verdict_doc(check: Mapping[str, Any] | None, target: str, n_features: int) -> dict[str, Any]:
    """The verdict with the colour strength, as the JSON documents carry it."""
    return {
        **verdict(check, target, n_features),
        "color_strength": color_strength(check, target, n_features),
    }


def color_strength(
    check: Mapping[str, Any] | None, target: str, n_features: int | None = None
) -> float:
    """How strong the heatmap's strongest colour is (0–1): the drop the check measured when the
    top 20% of units are removed (the largest drop when ``n_features`` is not given) over the
    reference effect (0.25 in probability), so ±0.02 on a 0.99 prediction looks faint. Without a
    check: 1 (the colours are relative to the largest score only)."""
    if not check:
        return 1.0
    drops = [d for d in check.get("comprehensiveness_by_k") or [] if d is not None]
    if not drops:
        return 1.0
    if n_features:
        drops = [drop_at(check, n_features) or 0.0]
    ref = REFERENCE_EFFECT["probability" if probability_target(target) else "other"]
    return float(min(max(max(drops), 0.0) / ref, 1.0))


def reference_note(target: str) -> str:
    """The legend's sentence about the colour scale."""
    ref = REFERENCE_EFFECT["probability" if probability_target(target) else "other"]
    what = "p(label)" if probability_target(target) else "the target"
    return (
        f"full colour = removing the top words lowers {what} by ≥ {ref:g}; "
        "faint colours = the prediction barely depends on these words"
    )


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's ρ (average ranks for ties); ``None`` when either side is constant."""
    x, y = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(v.size, dtype=float)
    for value in np.unique(v):  # average ranks of ties
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def top_overlap(a: Sequence[float], b: Sequence[float], k: int) -> int:
    """How many of the ``k`` highest-scoring units the two rankings share."""
    top = lambda s: set(np.argsort(-np.asarray(s, float), kind="stable")[:k].tolist())  # noqa: E731
    return len(top(a) & top(b))


def agreement(named_scores: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """Pairwise rank agreement of several methods' scores for one text."""
    names = list(named_scores)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sa, sb = named_scores[a], named_scores[b]
            if len(sa) != len(sb) or len(sa) < 2:
                continue
            k = max(1, math.ceil(0.2 * len(sa) - 1e-9))
            rho = spearman(sa, sb)
            out.append({"a": a, "b": b, "spearman": rho, "k": k, "overlap": top_overlap(sa, sb, k)})
    return out


def agreement_sentence(pairs: Sequence[Mapping[str, Any]]) -> str:
    """ "methods disagree: occlusion vs integrated_gradients ρ = 0.12, top-2 overlap 1/2"."""
    if not pairs:
        return ""
    rhos = [p["spearman"] for p in pairs if p["spearman"] is not None]
    mood = "agree" if rhos and min(rhos) >= 0.5 else "disagree" if rhos else "cannot be compared"
    parts = [
        f"{p['a']} vs {p['b']} ρ = {'–' if p['spearman'] is None else format(p['spearman'], '.2f')}"
        f", top-{p['k']} overlap {p['overlap']}/{p['k']}"
        for p in pairs
    ]
    return f"Methods {mood} (rank agreement): " + "; ".join(parts) + "."


def glossary_lines(terms: Sequence[str]) -> list[str]:
    """``term: explanation`` for each known term, in order."""
    return [f"{t}: {GLOSSARY[t]}" for t in terms if t in GLOSSARY]


def calibration_section(cal: Mapping[str, Any], shown_failing: Sequence[str] = ()) -> str:
    """An HTML table of a model's calibration: which methods beat a random ranking on it."""
    from explainlm.report.html import esc

    rows = []
    for r in cal["methods"]:
        ci = r.get("gain_ci") or [None, None]
        status = "passes" if r["passes"] else "fails"
        note = (
            " · shown below so you can see why the check matters"
            if r["method"] in shown_failing
            else ""
        )
        rows.append(
            f"<tr><td>{esc(r['method'])}</td><td>{r['comprehensiveness']:.3f}</td>"
            f"<td>{r['random']:.3f}</td><td>{r['gain']:+.3f} [{_ci(ci[0])}, {_ci(ci[1])}]</td>"
            f"<td>{r.get('drop_top20', 0.0):.3f}</td>"
            f'<td><span class="verdict {status}">{status}</span>{esc(note)}</td></tr>'
        )
    return (
        f"<h2>Which methods to trust on {esc(cal['model'])}</h2>"
        f"<div class='muted'>Calibration on {cal['n_texts']} built-in texts: a method passes when "
        "its comprehensiveness beats a random ranking's (95% bootstrap CI of the paired "
        f"difference above 0). {esc(GLOSSARY['comprehensiveness'])}.</div>"
        "<table><tr><th>method</th><th>comprehensiveness ↑</th><th>random</th>"
        "<th>difference [95% CI]</th><th>drop at top 20%</th><th>verdict</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _ci(v: Any) -> str:
    return "–" if v is None else f"{float(v):+.3f}"
