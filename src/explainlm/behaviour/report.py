"""Self-contained HTML reports of global results: tables, plain-language readings, inline SVG plots.

Every piece of user text goes through :func:`~explainlm.report.html.esc`; figures are inline SVG
with text drawn as paths, so a report is one file with no scripts and no external resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from explainlm.report.html import esc, page

if TYPE_CHECKING:
    from explainlm.behaviour.importance import GlobalImportance

CSS = """
.note{background:#f6f8ff;border-left:3px solid #4f7cff;padding:.5rem .75rem;margin:.6rem 0}
.warn{background:#fff7ed;border-left:3px solid #f97316;padding:.5rem .75rem;margin:.6rem 0}
.fig svg{max-width:100%;height:auto}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f8;padding:.6rem;overflow:auto;font-size:.85rem}
"""


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return esc(v)
    if f != f:
        return "–"
    return f"{f:.{digits}f}" if abs(f) >= 10 ** (-digits) or f == 0 else f"{f:.1e}"


def ci(row: Mapping[str, Any], key: str) -> str:
    return f"{fmt(row[key])} [{fmt(row.get(key + '_low'))}, {fmt(row.get(key + '_high'))}]"


def svg(fig: Any) -> str:
    import matplotlib

    from explainlm.behaviour.plots import figure_svg

    with matplotlib.rc_context({"svg.fonttype": "path"}):
        return f'<div class="fig">{figure_svg(fig)}</div>'


def note(text: str, warn: bool = False) -> str:
    return f'<div class="{"warn" if warn else "note"}">{esc(text)}</div>'


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; cells are pre-escaped HTML (use :func:`esc` / :func:`fmt`)."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def meta_of(meta: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: meta[k] for k in keys if meta.get(k) is not None}


def trust_notes(meta: Mapping[str, Any]) -> str:
    out = []
    for t in meta.get("trust", []) or []:
        out.append(note(t["text"], warn=not t.get("ok", True)))
    return "".join(out)


# ----------------------------------------------------------------------------- importance
def importance_section(imp: GlobalImportance, k: int = 15) -> str:
    parts = [f"<style>{CSS}</style>", trust_notes(imp.meta)]
    by = imp.meta.get("rank", "mean")
    parts.append(
        note(
            f"Features with at least {imp.meta.get('min_count')} occurrences, ranked by {by}; "
            f"scores are {imp.meta.get('method', 'attribution')} scores of the "
            f"{imp.meta.get('target', 'explained label')} target. 95% intervals: percentile "
            "bootstrap over texts."
        )
    )
    parts.append(svg(_importance_fig(imp, k)))
    for cls in imp.classes:
        rows = [
            [
                esc(r["feature"]),
                f'<span class="num">{r["n"]}</span>',
                f'<span class="num">{r["n_texts"]}</span>',
                ci(r, "mean"),
                ci(r, "mean_abs"),
                ci(r, "total"),
            ]
            for r in imp.top(cls, k)
        ]
        parts.append(f"<h2>{esc(cls)} · {imp.class_counts.get(cls, 0)} texts</h2>")
        parts.append(
            table(
                ["feature", "n", "texts", "mean [95% CI]", "mean |score|", "Σ|score|/texts"], rows
            )
        )
    return "".join(parts)


def _importance_fig(imp: GlobalImportance, k: int) -> Any:
    from explainlm.behaviour.plots import importance_figure

    return importance_figure(imp, k)


def importance_html(imp: GlobalImportance, k: int = 15) -> str:
    info = meta_of(imp.meta, ("model", "dataset", "method", "target", "n_texts"))
    if imp.run_id:
        info["run"] = imp.run_id
    return page("Dataset-level importance", [importance_section(imp, k)], info)


# ------------------------------------------------------------------------------ surrogates
def _ci_text(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{fmt(d['value'])} [{fmt(d['low'])}, {fmt(d['high'])}]"


def surrogate_section(result: Any) -> str:
    parts = [f"<style>{CSS}</style>"]
    parts.append(
        note(
            "Surrogates are trained on the model's predictions, not on the gold labels; fidelity is "
            "their agreement with the model on held-out texts (95% bootstrap CI). "
            f"See {result.citation}."
        )
    )
    rows = [
        [
            esc(r.kind),
            esc(r.feature_set),
            esc(
                ", ".join(
                    f"{k}={fmt(v, 3) if isinstance(v, float) else v}"
                    for k, v in r.complexity.items()
                )
            ),
            _ci_text(r.fidelity),
            fmt(r.train_fidelity),
            _ci_text(r.baseline_fidelity),
            _ci_text(r.gold_accuracy),
            _ci_text(r.model_accuracy),
            f"{r.fit_seconds:.2f} s",
        ]
        for r in result.reports
    ]
    head = [
        "surrogate",
        "features",
        "size",
        "held-out fidelity",
        "train fidelity",
        "most-common-label fidelity",
        "surrogate gold acc.",
        "model gold acc.",
        "fit",
    ]
    parts.append(table(head, rows))
    parts.append(svg(result.figure()))
    for r in result.reports:
        parts.append(f"<h2>{esc(r.kind)} on {esc(r.feature_set)}</h2>")
        parts.append(note(r.verdict, warn=r.fidelity["low"] < 0.85))
        if r.rules:
            parts.append(f"<pre>{esc(r.rules)}</pre>")
        if r.weights:
            parts.append(
                table(
                    ["feature", "weight", "towards"],
                    [[esc(w["feature"]), fmt(w["weight"]), esc(w["class"])] for w in r.weights],
                )
            )
    return "".join(parts)


def surrogate_html(result: Any) -> str:
    info = meta_of(result.meta, ("model", "dataset", "n_texts", "test_size"))
    if result.run_id:
        info["run"] = result.run_id
    return page("Global surrogates", [surrogate_section(result)], info)


# ----------------------------------------------------------------------------- sensitivity
def sensitivity_section(res: Any) -> str:
    parts = [f"<style>{CSS}</style>", trust_notes(res.meta), note(res.reading())]
    parts.append(svg(res.figure()))
    x = "share removed" if res.x == "fraction" else "words removed"
    rows = []
    for j, q in enumerate(res.grid):
        row = [fmt(q, 2)]
        for o in ("attribution", "random"):
            c = res.curves[o]
            row.append(f"{fmt(c['drop'][j])} [{fmt(c['low'][j])}, {fmt(c['high'][j])}]")
            if "flip" in c:
                row.append(
                    f"{fmt(c['flip'][j])} [{fmt(c['flip_low'][j])}, {fmt(c['flip_high'][j])}]"
                )
        rows.append(row)
    two = "flip" in res.curves["attribution"]
    head = [x, "drop · attribution order"] + (["flipped · attribution"] if two else [])
    head += ["drop · random order"] + (["flipped · random"] if two else [])
    parts.append(table(head, rows))
    d = res.difference
    parts.append(
        table(
            ["area under the drop curve", "mean [95% CI]"],
            [
                ["attribution order", _ci_text(res.auc["attribution"])],
                ["random order", _ci_text(res.auc["random"])],
                ["difference (paired)", f"{_ci_text(d)} · Wilcoxon p = {fmt(d['p_value'], 4)}"],
            ],
        )
    )
    return "".join(parts)


def sensitivity_html(res: Any) -> str:
    info = meta_of(res.meta, ("model", "dataset", "method", "replace", "n_texts", "n_random"))
    if res.run_id:
        info["run"] = res.run_id
    return page("Sensitivity curves", [sensitivity_section(res)], info)


# ------------------------------------------------------------------------- layer attribution
def _cell(v: float, scale: float) -> str:
    a = 0.0 if scale <= 0 else min(abs(v) / scale, 1.0)
    rgb = "220,38,38" if v > 0 else "37,99,235"
    return f'<td style="background:rgba({rgb},{a * 0.85:.2f})" title="{v:+.4g}"></td>'


def layer_matrix_html(res: Any, i: int) -> str:
    """One text's points × tokens heat map (each row scaled to its own largest |score|)."""
    from explainlm.report.matrix import show

    t = res.texts[i]
    head = "".join(
        f'<th class="src{" tmpl" if sp else ""}">{esc(show(tok))}</th>'
        for tok, sp in zip(t["tokens"], t["special"], strict=True)
    )
    rows = []
    deltas = t.get("delta")
    for k, (p, row) in enumerate(zip(res.points, t["scores"], strict=True)):
        scale = max((abs(v) for v in row), default=0.0)
        extra = f" · δ {deltas[k]:+.1e}" if deltas else ""
        rows.append(
            f'<tr><th title="max |score| {scale:.3g}{extra}">{esc(p)}</th>'
            + "".join(_cell(v, scale) for v in row)
            + f"<td>{fmt(sum(row))}</td></tr>"
        )
    probs = ", ".join(f"{esc(k)} {v:.3f}" for k, v in t["probs"].items())
    return (
        f"<h2>{esc(t['text'])}</h2><div>predicted <b>{esc(t['predicted'])}</b> · {probs} · "
        f"explaining {esc(t['label'])}</div><div class='scroll'><table class='mx'>"
        f"<tr><th></th>{head}<th>Σ</th></tr>{''.join(rows)}</table></div>"
    )


def layers_html(res: Any) -> str:
    from explainlm.report.matrix import MATRIX_CSS

    parts = [f"<style>{CSS}{MATRIX_CSS}</style>"]
    parts.append(
        note(
            f"{res.meta.get('method')} at each hook point, summed over the hidden dimension; red "
            "supports the explained label, blue opposes it; each row is scaled to its own maximum "
            f"(hover for values). {res.meta.get('citation', '')}."
        )
    )
    parts += [layer_matrix_html(res, i) for i in range(len(res.texts))]
    info = meta_of(res.meta, ("model", "method", "target", "steps", "baseline"))
    if res.run_id:
        info["run"] = res.run_id
    return page("Layer attribution", parts, info)


# ------------------------------------------------------------------------------- combined
# Each result type by its saved format (``SavedResult.format``): its heading and its section.
# Matched by format, not by class, so that this module imports none of the result modules (they
# import it to render themselves).
_SECTIONS: dict[str, tuple[str, Any]] = {
    "global-importance/1": ("Dataset-level importance", importance_section),
    "global-surrogate/1": ("Global surrogates", surrogate_section),
    "global-sensitivity/1": ("Sensitivity curves", sensitivity_section),
}


def combined_html(results: Sequence[Any], title: str, meta: Mapping[str, Any] | None = None) -> str:
    """One page holding several global results (importance, surrogates, sensitivity, layers)."""
    sections = []
    for r in results:
        if getattr(r, "format", None) not in _SECTIONS:
            raise TypeError(f"cannot report {type(r).__name__}")
        name, section = _SECTIONS[r.format]
        run = f" · run {esc(r.run_id)}" if getattr(r, "run_id", None) else ""
        method = f"{esc(r.meta.get('method'))}, " if r.format == "global-importance/1" else ""
        head = f"{name} ({method}{r.meta.get('n_texts')} texts{run})"
        sections.append(f"<h1>{head}</h1>{section(r)}")
    return page(title, sections, meta)
