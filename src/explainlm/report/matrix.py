"""HTML matrix heatmaps of generation attributions (rows: generated tokens; columns: sources)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from explainlm.report.html import esc, page
from explainlm.report.trust import GLOSSARY, color_strength, verdict

if TYPE_CHECKING:
    from explainlm.generation.result import GenerationAttribution

MATRIX_CSS = """
.mx{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}.mx td,.mx th{border:1px solid #eee;
padding:.15rem .3rem;text-align:center;white-space:pre}.mx th.src{writing-mode:vertical-rl;
transform:rotate(180deg);font-weight:400}.mx th.tmpl{color:#999}.mx th.gen{color:#7c3aed}
.mx td.na{background:#fafafa}.scroll{overflow-x:auto}
"""


def _cell(v: float | None, scale: float, strength: float = 1.0) -> str:
    if v is None or not math.isfinite(v):
        return '<td class="na"></td>'
    a = 0.0 if scale <= 0 else min(abs(v) / scale, 1.0) * strength
    rgb = "220,38,38" if v > 0 else "37,99,235"
    return f'<td style="background:rgba({rgb},{a * 0.85:.2f})" title="{v:+.4f}"></td>'


def show(unit: str) -> str:
    """A token as readable text: stripped, or escaped when it is only whitespace (``\\n``)."""
    return unit.strip() or unit.encode("unicode_escape").decode()


def method_name(a: GenerationAttribution) -> str:
    return f"auto → {a.auto['chosen']}" if a.auto else a.method


def summary(a: GenerationAttribution) -> str:
    """A plain-language sentence: the continuation, whether the method passes the faithfulness
    check (prompt words ranked by their attribution to the whole continuation), and, only when it
    does, the strongest source of each of the first generated tokens."""
    parts = []
    for i, unit in enumerate(a.target_units[:3]):
        top = a.top_sources(i, 1)
        if top:
            parts.append(f"'{show(unit)}' relied most on '{show(top[0][0])}' ({top[0][1]:+.2f})")
    text = f"The model continued with '{a.continuation.strip()}'"
    v = verdict(a.check, a.target, len(a.feature_scores()))
    name = method_name(a)
    if v["status"] == "fails":
        return (
            f"{text}. {name} failed the faithfulness check: removing its top 20% of prompt words "
            f"changes the continuation's {a.target} by {_f(v['drop_top20'])}, no more than random "
            "words, so its sources are no evidence of why."
        )
    if v["status"] == "passes":
        note = (
            f" — by {name}, which passes the faithfulness check (removing its top 20% of prompt "
            f"words lowers the continuation's {a.target} by {_f(v['drop_top20'])})"
        )
        if v["weak"]:
            note += "; weak evidence: the effect is small"
    elif v["status"] == "undecided":
        note = f" ({name}; a one-word prompt: the check cannot rank methods)"
    else:
        note = f" ({name}; faithfulness not checked)"
    return text + (": " + "; ".join(parts) if parts else "") + note + "."


def _f(v: object) -> str:
    return "–" if v is None else f"{float(v):.2f}"  # type: ignore[arg-type]


def check_line(a: GenerationAttribution) -> str:
    from explainlm.report.heatmap import check_html

    return check_html(a, len(a.feature_scores()))


def matrix_html(a: GenerationAttribution) -> str:
    """One attribution matrix with hover values, per-row top sources and a summary."""
    live = [
        abs(v)
        for row in a.matrix
        for v, k in zip(row, a.source_kinds, strict=True)
        if v is not None and math.isfinite(v) and k != "template"
    ]
    scale = max(live, default=0.0)
    strength = color_strength(a.check, a.target, len(a.feature_scores()))
    head = "".join(
        f'<th class="src {"tmpl" if k == "template" else "gen" if k == "generated" else ""}">{esc(u)}</th>'
        for u, k in zip(a.source_units, a.source_kinds, strict=True)
    )
    rows = []
    for i, (unit, row) in enumerate(zip(a.target_units, a.matrix, strict=True)):
        top = ", ".join(f"{esc(show(u))} {v:+.2f}" for u, v in a.top_sources(i))
        lp = a.target_logprobs[i] if i < len(a.target_logprobs) else float("nan")
        cells = "".join(_cell(v, scale, strength) for v in row)
        rows.append(
            f'<tr><th title="log p = {lp:.3f} ({esc(GLOSSARY["log p"])})">{esc(show(unit))}</th>'
            f'{cells}<td style="text-align:left">{top}</td></tr>'
        )
    why = f'<div class="why">{esc(a.auto["reason"])}</div>' if a.auto else ""
    target_tip = esc(GLOSSARY.get(a.target, ""))
    return (
        f'<div class="card"><h3>{esc(method_name(a))} · target '
        f'<abbr title="{target_tip}">{esc(a.target)}</abbr></h3>{check_line(a)}'
        f'<div class="summary">{esc(summary(a))}</div>{why}<div class="scroll"><table class="mx">'
        f"<tr><th></th>{head}<th>top sources</th></tr>{''.join(rows)}</table></div>"
        f'<div class="muted">{esc(", ".join(f"{k}={v}" for k, v in a.params.items()))} · '
        f"{a.seconds * 1000:.0f} ms</div></div>"
    )


def generation_section(attributions: Sequence[GenerationAttribution]) -> str:
    from explainlm.report.heatmap import HEAT_CSS

    out = [f"<style>{HEAT_CSS}{MATRIX_CSS}</style>"]
    last = None
    for a in attributions:
        if (a.prompt, a.continuation) != last:
            out.append(
                f"<h2>{esc(a.prompt)}</h2><div>continuation: <b>{esc(a.continuation)}</b></div>"
            )
            last = (a.prompt, a.continuation)
        out.append(matrix_html(a))
    if attributions:
        from explainlm.report.heatmap import legend_html

        out.append(legend_html(attributions[0].target))
    return "".join(out)


def generation_report(
    attributions: Sequence[GenerationAttribution], meta: dict[str, object] | None = None
) -> str:
    return page("explainlm: why this continuation?", [generation_section(attributions)], meta)
