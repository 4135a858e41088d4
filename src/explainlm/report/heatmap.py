"""HTML heatmaps of explanations and the plain-language summary (all user text escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from explainlm.report.html import esc, page
from explainlm.report.trust import (
    GLOSSARY,
    agreement,
    agreement_sentence,
    color_strength,
    glossary_lines,
    probability_target,
    reference_note,
    verdict,
)

if TYPE_CHECKING:
    from explainlm.explanation import Explanation

HEAT_CSS = """
.heat{line-height:2;font-size:1.02rem}.heat span{padding:.1rem .2rem;margin:0 .05rem;border-radius:3px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.card{border:1px solid #e3e3e8;border-radius:8px;padding:.75rem}.card h3{margin:.1rem 0 .5rem;font-size:1rem}
.summary{background:#f6f8ff;border-left:3px solid #4f7cff;padding:.5rem .75rem;margin:.5rem 0}
.special{color:#999;font-size:.8rem}
.verdict{display:inline-block;border-radius:4px;padding:.05rem .4rem;font-size:.8rem;font-weight:600}
.verdict.passes{background:#e7f6ec;color:#14622e}.verdict.fails{background:#fdecea;color:#8a1c12}
.verdict.undecided,.verdict.unchecked{background:#f1f1f4;color:#555}
.card.fails .heat{opacity:.45}.why{font-size:.85rem;color:#333;margin:.3rem 0}
.agree{font-size:.9rem;margin:.4rem 0}.glossary{font-size:.85rem;color:#555}
abbr{text-decoration:underline dotted;cursor:help}
"""


def _color(score: float, scale: float, strength: float = 1.0) -> str:
    a = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0) * strength
    rgb = "220,38,38" if score > 0 else "37,99,235"
    return f"background:rgba({rgb},{a * 0.85:.2f})"


def heat_spans(e: Explanation) -> str:
    """Coloured units (red pushes towards the target, blue against), exact value on hover. The
    strongest colour is scaled by the effect the check measured (:func:`color_strength`)."""
    units, scores = e.units, e.scores
    special = e.token_special if e.granularity == "token" else [False] * len(units)
    live = [abs(s) for s, sp in zip(scores, special, strict=True) if not sp]
    scale = max(live, default=0.0)
    strength = color_strength(e.check, e.target, len(e.feature_scores()))
    parts = []
    for u, s, sp in zip(units, scores, special, strict=True):
        if sp:
            parts.append(f'<span class="special" title="special token">{esc(u)}</span>')
        else:
            style = _color(s, scale, strength)
            parts.append(f'<span style="{style}" title="{s:+.4f}">{esc(u)}</span>')
    return f'<div class="heat">{" ".join(parts)}</div>'


def method_name(e: Any) -> str:
    """``occlusion``, or ``auto → context_cite`` for an explanation auto chose."""
    auto = getattr(e, "auto", None)
    return f"auto → {auto['chosen']}" if auto else e.method


def _what(e: Explanation) -> str:
    return f"p({e.label})" if probability_target(e.target) else f"the target ({e.target})"


def _because(e: Explanation, k: int) -> str:
    pos = [(u, s) for u, s in e.top(len(e.units)) if s > 0][:k]
    neg = sorted([(u, s) for u, s in e.top(len(e.units)) if s < 0], key=lambda p: p[1])[:1]
    text = ""
    if pos:
        text += "mainly because of " + " and ".join(f"'{u}' ({s:+.2f})" for u, s in pos)
    others = [lab for lab in e.probs if lab != e.label]
    if neg:
        towards = others[0].upper() if len(others) == 1 else "other labels"
        text += (
            "; " if text else ""
        ) + f"'{neg[0][0]}' pushed towards {towards} ({neg[0][1]:+.2f})"
    return text


def summary(e: Explanation, k: int = 2) -> str:
    """A plain-language sentence: the prediction, whether the method can be trusted on this text
    (its check's verdict), and, only when it can, the main supporting and opposing units."""
    prob = e.probs.get(e.predicted, 0.0)
    head = f"Predicted {e.predicted.upper()} ({prob:.2f})"
    if e.target.startswith("contrast"):
        head += f"; explaining {e.target}"
    elif e.label != e.predicted:
        head += f"; explaining {e.label.upper()}"
    v = verdict(e.check, e.target, len(e.feature_scores()))
    name, what, because = method_name(e), _what(e), _because(e, k)
    drop, rand = _f(v.get("drop_top20")), _f(v.get("random_comprehensiveness"))
    if v["status"] == "unchecked":
        return f"{head}, {because or 'no unit stands out'} ({name}; faithfulness not checked)."
    if v["status"] == "undecided":
        return f"{head}. The text is a single unit, so it is the whole input ({name}); the check cannot rank methods on it."
    if v["status"] == "fails":
        return (
            f"{head}. {name} failed the faithfulness check on this text: removing its top 20% lowers "
            f"{what} by {drop}, no more than random words (comprehensiveness "
            f"{_f(e.check['comprehensiveness'])} vs {rand}), so its scores are no evidence of why."
        )
    comp = _f(e.check["comprehensiveness"]) if e.check else "–"
    evidence = (
        f"removing its top 20% lowers {what} by {drop}; comprehensiveness {comp} vs {rand} "
        "for random words"
    )
    if v["weak"]:
        return (
            f"{head}. Weak evidence ({name}, {evidence}): the prediction barely depends on single "
            f"words here; largest scores: {because or 'none'}."
        )
    return f"{head}, {because or 'no unit stands out'} — by {name}, which passes the faithfulness check ({evidence})."


def _f(v: Any) -> str:
    return "–" if v is None else f"{float(v):.2f}"


def check_html(e: Any, n_features: int) -> str:
    """The verdict badge and the check's numbers, each term with its one-line explanation."""
    v = verdict(e.check, e.target, n_features)
    labels = {
        "passes": "passes the faithfulness check",
        "fails": "fails the faithfulness check: not evidence of why",
        "undecided": "one unit: the check cannot judge",
        "unchecked": "faithfulness not checked",
    }
    label = labels[v["status"]] + (" (weak effect)" if v["weak"] else "")
    badge = f'<span class="verdict {v["status"]}">{esc(label)}</span>'
    if not e.check:
        return f'<div class="check">{badge}</div>'
    terms = [
        ("comprehensiveness", e.check.get("comprehensiveness"), "↑"),
        ("random", v.get("random_comprehensiveness"), ""),
        ("sufficiency", e.check.get("sufficiency"), "↓"),
    ]
    nums = " · ".join(
        f'<abbr title="{esc(GLOSSARY[t])}">{esc(t)}</abbr> {_signed(x)}{a}' for t, x, a in terms
    )
    return f'<div class="check">{badge} <span class="muted">{nums}</span></div>'


def explanation_html(e: Explanation) -> str:
    """One explanation as a card: method, verdict, heatmap, summary, auto's reason, parameters."""
    facts = [f"target {e.target}"]
    if e.params:
        facts.append(", ".join(f"{k}={v}" for k, v in e.params.items()))
    if e.delta is not None:
        facts.append(f"completeness δ = {e.delta:+.2e}")
    facts.append(f"{e.seconds * 1000:.1f} ms")
    status = verdict(e.check, e.target, len(e.feature_scores()))["status"]
    why = f'<div class="why">{esc(e.auto["reason"])}</div>' if e.auto else ""
    delta_tip = f' title="δ: {esc(GLOSSARY["δ"])}"' if e.delta is not None else ""
    return (
        f'<div class="card {status}"><h3>{esc(method_name(e))}</h3>{check_html(e, len(e.feature_scores()))}'
        f'{heat_spans(e)}<div class="summary">{esc(summary(e))}</div>{why}'
        f'<div class="muted"{delta_tip}>{esc(" · ".join(facts))}</div></div>'
    )


def _groups(explanations: Iterable[Explanation]) -> list[list[Explanation]]:
    groups: dict[str, list[Explanation]] = {}
    for e in explanations:
        groups.setdefault(e.text, []).append(e)
    return list(groups.values())


def explanations_section(explanations: Sequence[Explanation]) -> str:
    """Every text with its prediction and the heatmaps of each method side by side."""
    out = [f"<style>{HEAT_CSS}</style>"]
    targets = []
    for group in _groups(explanations):
        first = group[0]
        targets.append(first.target)
        probs = ", ".join(f"{esc(k)} {v:.3f}" for k, v in first.probs.items())
        agree = agreement_sentence(agreement({method_name(e): e.feature_scores() for e in group}))
        out.append(
            f"<h2>{esc(first.text)}</h2><div>predicted <b>{esc(first.predicted)}</b> · "
            f'<abbr title="{esc(GLOSSARY["prob"])}">prob</abbr> {probs}</div>'
            + (f'<div class="agree">{esc(agree)}</div>' if agree else "")
            + f'<div class="grid">{"".join(explanation_html(e) for e in group)}</div>'
        )
    if targets:
        out.append(legend_html(targets[0]))
    return "".join(out)


def legend_html(target: str) -> str:
    """The colour legend (with its absolute reference) and the glossary of the terms shown."""
    terms = [
        "prob",
        "comprehensiveness",
        "sufficiency",
        "random",
        "δ",
        "Spearman ρ",
        "top-k overlap",
    ]
    items = "".join(f"<li>{esc(line)}</li>" for line in glossary_lines(terms))
    return (
        '<div class="muted">Red: pushes towards the explained label; blue: against; hover for the '
        f"exact value. {esc(reference_note(target))}.</div>"
        f'<div class="glossary"><b>Terms</b><ul>{items}</ul></div>'
    )


def explanations_report(
    explanations: Sequence[Explanation],
    title: str = "explainlm explanations",
    meta: dict[str, object] | None = None,
) -> str:
    return page(title, [explanations_section(explanations)], meta)


def faithfulness_section(faith: Sequence[dict], explanations: Sequence[Explanation]) -> str:
    """A table of each explanation's comprehensiveness and sufficiency (ERASER AOPC)."""
    rows = []
    for f in faith:
        i = int(f.get("index", 0))
        text = explanations[i].text if i < len(explanations) else ""
        rows.append(
            f"<tr><td>{esc(text)}</td><td>{esc(f.get('method'))}</td>"
            f"<td>{_signed(f.get('comprehensiveness'))}</td><td>{_signed(f.get('sufficiency'))}</td></tr>"
        )
    return (
        "<h2>Faithfulness (ERASER AOPC over top 1/5/10/20/50%)</h2><table><tr><th>text</th>"
        "<th>method</th><th>comprehensiveness ↑</th><th>sufficiency ↓</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _signed(v: object) -> str:
    return "–" if v is None else f"{float(v):+.3f}"  # type: ignore[arg-type]
