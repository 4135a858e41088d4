"""HTML heatmaps of explanations and the plain-language summary (all user text escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from explainlm.report.html import esc, page

if TYPE_CHECKING:
    from explainlm.explanation import Explanation

HEAT_CSS = """
.heat{line-height:2;font-size:1.02rem}.heat span{padding:.1rem .2rem;margin:0 .05rem;border-radius:3px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.card{border:1px solid #e3e3e8;border-radius:8px;padding:.75rem}.card h3{margin:.1rem 0 .5rem;font-size:1rem}
.summary{background:#f6f8ff;border-left:3px solid #4f7cff;padding:.5rem .75rem;margin:.5rem 0}
.special{color:#999;font-size:.8rem}
"""


def _color(score: float, scale: float) -> str:
    a = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0)
    rgb = "220,38,38" if score > 0 else "37,99,235"
    return f"background:rgba({rgb},{a * 0.85:.2f})"


def heat_spans(e: Explanation) -> str:
    """Coloured units (red pushes towards the target, blue against), exact value on hover."""
    units, scores = e.units, e.scores
    special = e.token_special if e.granularity == "token" else [False] * len(units)
    live = [abs(s) for s, sp in zip(scores, special, strict=True) if not sp]
    scale = max(live, default=0.0)
    parts = []
    for u, s, sp in zip(units, scores, special, strict=True):
        if sp:
            parts.append(f'<span class="special" title="special token">{esc(u)}</span>')
        else:
            parts.append(f'<span style="{_color(s, scale)}" title="{s:+.4f}">{esc(u)}</span>')
    return f'<div class="heat">{" ".join(parts)}</div>'


def summary(e: Explanation, k: int = 2) -> str:
    """A plain-language sentence: prediction, the main supporting and opposing units."""
    prob = e.probs.get(e.predicted, 0.0)
    pos = [(u, s) for u, s in e.top(len(e.units)) if s > 0][:k]
    neg = sorted([(u, s) for u, s in e.top(len(e.units)) if s < 0], key=lambda p: p[1])[:1]
    text = f"Predicted {e.predicted.upper()} ({prob:.2f})"
    if e.target.startswith("contrast"):
        text += f"; explaining {e.target}"
    elif e.label != e.predicted:
        text += f"; explaining {e.label.upper()}"
    if pos:
        text += ", mainly because of " + " and ".join(f"'{u}' ({s:+.2f})" for u, s in pos)
    others = [lab for lab in e.probs if lab != e.label]
    if neg:
        towards = others[0].upper() if len(others) == 1 else "other labels"
        text += f"; '{neg[0][0]}' pushed towards {towards} ({neg[0][1]:+.2f})"
    return text + "."


def explanation_html(e: Explanation) -> str:
    """One explanation as a card: method, heatmap, summary, parameters."""
    facts = [f"target {e.target}"]
    if e.params:
        facts.append(", ".join(f"{k}={v}" for k, v in e.params.items()))
    if e.delta is not None:
        facts.append(f"completeness δ = {e.delta:+.2e}")
    facts.append(f"{e.seconds * 1000:.1f} ms")
    return (
        f'<div class="card"><h3>{esc(e.method)}</h3>{heat_spans(e)}'
        f'<div class="summary">{esc(summary(e))}</div>'
        f'<div class="muted">{esc(" · ".join(facts))}</div></div>'
    )


def _groups(explanations: Iterable[Explanation]) -> list[list[Explanation]]:
    groups: dict[str, list[Explanation]] = {}
    for e in explanations:
        groups.setdefault(e.text, []).append(e)
    return list(groups.values())


def explanations_section(explanations: Sequence[Explanation]) -> str:
    """Every text with its prediction and the heatmaps of each method side by side."""
    out = [f"<style>{HEAT_CSS}</style>"]
    for group in _groups(explanations):
        first = group[0]
        probs = ", ".join(f"{esc(k)} {v:.3f}" for k, v in first.probs.items())
        out.append(
            f"<h2>{esc(first.text)}</h2><div>predicted <b>{esc(first.predicted)}</b> · {probs}</div>"
            f'<div class="grid">{"".join(explanation_html(e) for e in group)}</div>'
        )
    return "".join(out)


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
