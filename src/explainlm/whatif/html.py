"""HTML fragments for what-if results: edits highlighted and side-by-side diffs (front-ends wrap them
in a page). Every piece of user text is escaped. Works on the results' dict form (``to_dict``), so
stored and resumed runs render the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from explainlm.whatif.text import WordText

CSS = """
.wi-diff{display:grid;grid-template-columns:1fr 1fr;gap:.3rem 1rem;margin:.4rem 0 1rem}
.wi-diff div{padding:.4rem .6rem;border:1px solid #e5e5ea;border-radius:6px;line-height:1.7}
.wi-del{background:#ffe1e1;text-decoration:line-through;border-radius:3px;padding:0 2px}
.wi-ins{background:#d9f7df;border-radius:3px;padding:0 2px;font-weight:600}
.wi-anchor{background:#ffe9a8;border-radius:3px;padding:0 2px;font-weight:600}
.wi-meta{color:#6e6e73;font-size:.85rem}
"""


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _marked(text: str, spans: Sequence[Sequence[int]], cls: str) -> str:
    """``text`` with each character span wrapped in ``<span class=cls>`` (empty spans: a caret)."""
    out, cursor = [], 0
    for s, t in sorted((int(a), int(b)) for a, b in spans):
        out.append(_e(text[cursor:s]))
        inner = _e(text[s:t]) if t > s else "&#8248;"
        out.append(f'<span class="{cls}">{inner}</span>')
        cursor = max(cursor, t)
    out.append(_e(text[cursor:]))
    return "".join(out)


def side_by_side(
    original: str, edited: str, edits: Sequence[Mapping[str, Any]], spans: Sequence[Sequence[int]]
) -> str:
    """Two columns: the original with edited words struck out, the edited text with new words."""
    wt = WordText.of(original)
    old_spans = [wt.spans[int(e["index"])] for e in edits]
    new_spans = [s for s, e in zip(spans, edits, strict=True) if e["replacement"]]
    return (
        '<div class="wi-diff">'
        f"<div>{_marked(original, old_spans, 'wi-del')}</div>"
        f"<div>{_marked(edited, new_spans, 'wi-ins')}</div></div>"
    )


def _probs(probs: Mapping[str, float]) -> str:
    return ", ".join(f"{_e(k)} {float(v):.3f}" for k, v in probs.items())


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "–" if v is None else format(float(v), spec)


def summary_table(summary: Mapping[str, Any]) -> str:
    """Rows of ``name | mean [low, high] (n)`` for interval entries, ``name | value`` for the rest."""
    rows = []
    for k, v in summary.items():
        if isinstance(v, Mapping) and "mean" in v:
            cell = (
                "n/a"
                if v["mean"] is None
                else (
                    f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}] <span class='wi-meta'>n={v['n']}</span>"
                )
            )
        else:
            cell = _e(v)
        rows.append(f"<tr><th>{_e(k.replace('_', ' '))}</th><td>{cell}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def counterfactual_section(items: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<h2>Counterfactuals</h2>"]
    for r in items:
        head = f"<h3>{_e(r['text'])}</h3><div class='wi-meta'>predicted {_e(r['label'])} ({_probs(r['probs'])})"
        if r.get("skipped"):
            parts.append(f"{head} · skipped: {_e(r['skipped'])}</div>")
            continue
        parts.append(f"{head} · {r['queries']} queries</div>")
        if not r["counterfactuals"]:
            parts.append("<p>No counterfactual found within the budget.</p>")
        for c in r["counterfactuals"]:
            parts.append(
                f"<div class='wi-meta'>→ {_e(c['label'])} ({_probs(c['probs'])}) · {c['n_edits']} "
                f"edit(s) · perplexity {_fmt(c['perplexity'], '.1f')} · similarity "
                f"{_fmt(c['similarity'])}</div>"
                + side_by_side(r["text"], c["text"], c["edits"], c["spans"])
            )
    return "".join(parts)


def attack_section(items: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<h2>Adversarial examples</h2>"]
    for r in items:
        meta = f"{_e(r['status'])} · {r['queries']} queries · predicted {_e(r['label'])}"
        if r.get("gold") is not None:
            meta += f" (gold {_e(r['gold'])})"
        parts.append(f"<h3>{_e(r['text'])}</h3><div class='wi-meta'>{meta}</div>")
        if r.get("adversarial"):
            parts.append(
                f"<div class='wi-meta'>→ {_e(r['new_label'])} ({_probs(r['new_probs'])}) · "
                f"{100 * r['perturbed_fraction']:.0f}% of words · similarity {_fmt(r['similarity'])}</div>"
            )
            wt = WordText.of(r["text"])
            new = wt.apply(_edits(r["edits"]))
            parts.append(side_by_side(r["text"], new.text, r["edits"], new.spans))
    return "".join(parts)


def anchor_section(items: Sequence[Mapping[str, Any]]) -> str:
    parts = ["<h2>Anchors</h2>"]
    for r in items:
        if r.get("skipped"):
            parts.append(
                f"<h3>{_e(r['text'])}</h3><div class='wi-meta'>skipped: {_e(r['skipped'])}</div>"
            )
            continue
        wt = WordText.of(r["text"])
        text = _marked(r["text"], [wt.spans[i] for i in r["indices"]], "wi-anchor")
        ok = "" if r["meets_threshold"] else " · <b>below the precision threshold</b>"
        parts.append(
            f"<h3>{text}</h3><div>{_e(r['rule'])}</div><div class='wi-meta'>precision "
            f"{_fmt(r['precision'])} [{_fmt(r['precision_low'])}, {_fmt(r['precision_high'])}] at "
            f"{100 * r['confidence']:.0f}% confidence, {r['n_samples']} samples · coverage "
            f"{_fmt(r['coverage'])} · {r['queries']} queries{ok}</div>"
        )
        for title, key in (
            ("prediction kept", "examples_kept"),
            ("prediction changed", "examples_changed"),
        ):
            if r.get(key):
                rows = "".join(f"<li>{_e(t)}</li>" for t in r[key])
                parts.append(f"<div class='wi-meta'>{title}:</div><ul>{rows}</ul>")
    return "".join(parts)


def _edits(ds: Sequence[Mapping[str, Any]]) -> list[Any]:
    from explainlm.whatif.text import Edit

    return [Edit.from_dict(dict(d)) for d in ds]


def contrast_section(contrast_sets: Sequence[Mapping[str, Any]], max_mistakes: int = 50) -> str:
    """Each evaluated model's accuracy on the originals and on the contrast set, and its mistakes."""
    parts = [
        "<h2>Contrast sets</h2><p class='wi-meta'>Each edited text is assumed to carry the label "
        "the editor was moved to (Gardner et al. 2020): read a sample of the edits before trusting "
        "the drop.</p>"
    ]
    for cs in contrast_sets:
        parts.append(
            f"<h3>{_e(cs['model'])} <span class='wi-meta'>editor {_e(cs['editor'])} · "
            f"{cs['n_originals']} originals · {cs['n_contrast']} edited texts</span></h3>"
        )
        keys = ("original_accuracy", "contrast_accuracy", "drop", "consistency")
        parts.append(summary_table({k: cs[k] for k in keys}))
        parts.extend(f"<p class='wi-meta'>{_e(n)}</p>" for n in cs.get("notes", []))
        wrong = [e for e in cs.get("examples", []) if e["predicted"] != e["label"]]
        if not wrong:
            continue
        rows = "".join(
            f"<tr><td>{_e(e['text'])}</td><td>{_e(e['label'])}</td><td>{_e(e['predicted'])}</td></tr>"
            for e in wrong[:max_mistakes]
        )
        more = len(wrong) - max_mistakes
        tail = f"<p class='wi-meta'>… and {more} more</p>" if more > 0 else ""
        parts.append(
            f"<h4>Mistakes on the contrast set ({len(wrong)})</h4><table><tr><th>edited text</th>"
            f"<th>assumed label</th><th>predicted</th></tr>{rows}</table>{tail}"
        )
    return "".join(parts)
