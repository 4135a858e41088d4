"""A self-contained HTML audit report: conclusions first, then bar charts with error bars (inline
SVG, no scripts or CDN) and the tables behind them. Every piece of user text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.report.html import esc, page

BAR_H, LABEL_W, PLOT_W = 18, 220, 420


def _finite(*vals: Any) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in vals)


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, float | None, Sequence[float | None] | None]],
    *,
    lo: float | None = None,
    hi: float | None = None,
    reference: float | None = None,
    reference_label: str = "",
) -> str:
    """Horizontal bars (value) with error bars (CI) per row; a dashed reference line."""
    vals = [v for _, v, _ in rows if _finite(v)]
    ends = [c for _, _, ci in rows if ci for c in ci if _finite(c)]
    lo = (
        min([0.0, *vals, *ends] + ([reference] if reference is not None else []))
        if lo is None
        else lo
    )
    hi = (
        max([0.0, *vals, *ends] + ([reference] if reference is not None else []))
        if hi is None
        else hi
    )
    if hi <= lo:
        hi = lo + 1.0

    def x(v: float) -> float:
        return LABEL_W + (v - lo) / (hi - lo) * PLOT_W

    height = BAR_H * len(rows) + 30
    parts = [
        f"<svg role='img' aria-label='{esc(title)}' width='{LABEL_W + PLOT_W + 70}' "
        f"height='{height}' xmlns='http://www.w3.org/2000/svg' style='font:12px sans-serif'>"
    ]
    zero = x(0.0) if lo <= 0 <= hi else x(lo)
    for i, (label, v, ci) in enumerate(rows):
        y = 4 + i * BAR_H
        parts.append(
            f"<text x='{LABEL_W - 6}' y='{y + 12}' text-anchor='end'>{esc(label[:40])}</text>"
        )
        if _finite(v):
            a, b = sorted((zero, x(float(v))))  # type: ignore[arg-type]
            parts.append(
                f"<rect x='{a:.1f}' y='{y + 2}' width='{max(b - a, 1):.1f}' height='{BAR_H - 6}' "
                "fill='#4f7cff' opacity='0.8'/>"
            )
            text = f"{float(v):.3f}"  # type: ignore[arg-type]
            parts.append(f"<text x='{LABEL_W + PLOT_W + 6}' y='{y + 12}'>{text}</text>")
        if ci and _finite(*ci):
            c0, c1 = x(float(ci[0])), x(float(ci[1]))  # type: ignore[arg-type]
            mid = y + BAR_H / 2 - 1
            parts.append(
                f"<path d='M{c0:.1f},{mid} H{c1:.1f} M{c0:.1f},{mid - 4} V{mid + 4} "
                f"M{c1:.1f},{mid - 4} V{mid + 4}' stroke='#1d1d1f' fill='none'/>"
            )
    base = 4 + len(rows) * BAR_H
    parts.append(
        f"<text x='{LABEL_W}' y='{base + 16}'>{lo:.2f}</text>"
        f"<text x='{LABEL_W + PLOT_W}' y='{base + 16}' text-anchor='end'>{hi:.2f}</text>"
    )
    if reference is not None and lo <= reference <= hi:
        r = x(reference)
        parts.append(
            f"<line x1='{r:.1f}' x2='{r:.1f}' y1='0' y2='{base}' stroke='#d33' "
            f"stroke-dasharray='4 3'/><text x='{r + 3:.1f}' y='{base + 16}' fill='#d33'>"
            f"{esc(reference_label)}</text>"
        )
    parts.append("</svg>")
    return f"<h3>{esc(title)}</h3>{''.join(parts)}"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if not math.isfinite(v) else f"{v:.4g}"
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(c, float) for c in v):
            return "[" + ", ".join("n/a" if not math.isfinite(c) else f"{c:.3f}" for c in v) + "]"
        if v is None:
            return "—"
        return esc(v)

    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def conclusions(lines: Sequence[str]) -> str:
    items = "".join(f"<li>{esc(x)}</li>" for x in lines)
    return f"<h2>Conclusions</h2><ul>{items}</ul>"


def _fairness_sections(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for dim in doc["dimensions"]:
        title = f"{dim['dimension']} — favourable label {dim['label']}"
        charts = []
        for metric in ("selection_rate", "true_positive_rate", "accuracy"):
            if metric not in dim["metrics"]:
                continue
            rows = [
                (
                    f"{g['group']} (n={g['n']})",
                    g["metrics"][metric]["value"],
                    g["metrics"][metric]["ci"],
                )
                for g in dim["groups"]
            ]
            charts.append(bar_chart(f"{metric.replace('_', ' ')} by group", rows, lo=0.0, hi=1.0))
        comps = [
            {**c, "ci": c.get("ci"), "p": c.get("p_value"), "p adjusted": c.get("p_adjusted")}
            for c in dim["comparisons"]
        ]
        di = [c for c in dim["comparisons"] if c["metric"] == "disparate_impact"]
        if di:
            charts.append(
                bar_chart(
                    "disparate impact (min/max selection rate)",
                    [(dim["dimension"], di[0]["value"], di[0]["ci"])],
                    lo=0.0,
                    hi=1.0,
                    reference=0.8,
                    reference_label="four-fifths",
                )
            )
        out.append(
            f"<h2>{esc(title)}</h2>{''.join(charts)}"
            + table(comps, ["metric", "value", "ci", "p", "p adjusted", "lowest", "highest"])
        )
    return out


def _lm_sections(doc: Mapping[str, Any]) -> list[str]:
    out = []
    if "by_bias_type" in doc:
        rows = [
            (f"{r['bias_type']} (n={r['n']})", r["metric"], r["ci"]) for r in doc["by_bias_type"]
        ]
        out.append(bar_chart("share preferring the more stereotyping sentence", rows, lo=0.0,
                             hi=1.0, reference=0.5, reference_label="50%"))  # fmt: skip
        out.append(
            table(doc["by_bias_type"], ["bias_type", "n", "metric", "ci", "p_value", "p_adjusted"])
        )
    if "by_category" in doc:
        for cond in ("ambig", "disambig"):
            rows = [
                (f"{r['category']} (n={r['n']})", r["bias_score"], r["bias_score_ci"])
                for r in doc["by_category"]
                if r["condition"] == cond
            ]
            out.append(
                bar_chart(f"BBQ bias score, {cond} contexts", rows, lo=-1.0, hi=1.0, reference=0.0)
            )
        out.append(table(doc["by_category"], ["category", "condition", "n", "accuracy", "accuracy_ci",
                                              "bias_score", "bias_score_ci", "p_adjusted"]))  # fmt: skip
    if "by_type" in doc:
        rows = []
        for r in doc["by_type"]:
            rows += [(f"{r['kind']} pro", r["pro_accuracy"], r["pro_ci"]),
                     (f"{r['kind']} anti", r["anti_accuracy"], r["anti_ci"])]  # fmt: skip
        out.append(bar_chart("WinoBias accuracy", rows, lo=0.0, hi=1.0, reference=0.5))
        out.append(table(doc["by_type"], ["kind", "n_pairs", "pro_accuracy", "anti_accuracy", "gap",
                                          "gap_ci", "p_adjusted"]))  # fmt: skip
    if "by_group" in doc:
        rows = [(f"{g['group']} (n={g['n']})", g["value"], g["ci"]) for g in doc["by_group"]]
        out.append(bar_chart(f"BOLD: mean {doc.get('score', 'score')} by group", rows))
        out.append(table(doc["by_group"], ["group", "n", "value", "ci"]))
    return out


def _counterfactual_sections(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("by_template", "by_emotion_word"):
        if doc.get(key):
            name = key.removeprefix("by_")
            rows = [(str(r[name]), r["mean_gap"], r["ci"]) for r in doc[key]]
            out.append(bar_chart(f"mean gap by {name.replace('_', ' ')}", rows, reference=0.0))
    if doc.get("worst_pairs"):
        out.append("<h3>Largest gaps</h3>" + table(doc["worst_pairs"], ["a", "b", "gap"]))
    att = doc.get("attribution")
    if att:
        rows = [(side, v["share"][0], v["share"][1:]) for side, v in att["by_side"].items()]
        rows.append(("uniform (word share)", att["uniform_share"], None))
        out.append(bar_chart("attribution mass on identity words", rows, lo=0.0, hi=1.0))
    return out


def _bios_sections(doc: Mapping[str, Any]) -> list[str]:
    out = []
    rows = []
    for r in doc.get("tpr_by_occupation", []):
        for side in ("female", "male"):
            cell = r.get(side) or {}
            rows.append(
                (
                    f"{r['occupation']} {side} (n={cell.get('n', 0)})",
                    cell.get("value"),
                    cell.get("ci"),
                )
            )
    if rows:
        out.append(bar_chart("true-positive rate by occupation and gender", rows, lo=0.0, hi=1.0))
        out.append(
            table(
                doc["tpr_by_occupation"], ["occupation", "gap", "gap_ci", "p_value", "p_adjusted"]
            )
        )
    for key in ("plausibility",):
        if doc.get(key):
            out.append(
                "<h3>Plausibility by gender</h3>"
                + table(doc[key], ["rationale", "gender", "metric", "n", "mean", "ci"])
            )
    return out


SECTIONS = {
    "fairness": _fairness_sections,
    "lm-bias": _lm_sections,
    "counterfactual": _counterfactual_sections,
    "bios": _bios_sections,
}


def audit_html(doc: Mapping[str, Any], title: str | None = None) -> str:
    """The complete HTML document of an audit result (``to_json_doc()``)."""
    kind = doc.get("kind", "audit")
    sections = [conclusions(doc.get("conclusions") or [])]
    sections += SECTIONS.get(kind, lambda d: [])(doc)
    for sub in doc.get("parts", []):
        sections.append(f"<h2>{esc(sub.get('title', sub.get('kind', '')))}</h2>")
        sections += SECTIONS.get(sub.get("kind", ""), lambda d: [])(sub)
    notes = doc.get("notes") or []
    if notes:
        sections.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
        )
    meta = {k: doc[k] for k in ("run_id", "model", "data", "correction_name") if doc.get(k)}
    return page(title or f"explainlm {kind} audit", sections, meta)
