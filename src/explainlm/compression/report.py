"""The compare report: a self-contained HTML page with tables and drift-vs-compression plots.

It reads only the result's JSON document (``CompareResult.to_json_doc()``), so a stored run can be
rendered again without models.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from explainlm.report.html import esc, page, write_path

AXES = {
    "quantization": "bits per weight",
    "precision": "bits per weight",
    "pruning": "fraction pruned",
}


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return esc(v)


def _ci(d: Mapping[str, Any] | None, key: str = "mean", digits: int = 3) -> str:
    if not d or d.get(key) is None:
        return "–"
    lo, hi = d.get("ci_low"), d.get("ci_high")
    if lo is None or hi is None:
        return _fmt(d[key], digits)
    return f"{d[key]:.{digits}f} <span class='muted'>[{lo:.{digits}f}, {hi:.{digits}f}]</span>"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _kind_of(spec: str) -> str:
    head = spec.split(":")[0]
    if head in ("int8", "bf16", "fp16"):
        return "bf16 / fp16 / int8"
    return "rtn (weight-only)" if head.startswith("rtn") else head


def drift_plot(doc: Mapping[str, Any], metric: str = "spearman") -> str | None:
    """Mean drift metric (95 % CI bars) against the compression level, one panel per variant
    kind (rtn: bits; magnitude / random / heads: fraction pruned), one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[Mapping[str, Any]]] = {}
    for v in doc["variants"]:
        if v.get("level") is not None and v.get("family") in AXES:
            panels.setdefault(_kind_of(v["spec"]), []).append(v)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.2), squeeze=False)
    for ax, (kind, vs) in zip(axes.flat, panels.items(), strict=True):
        vs = sorted(vs, key=lambda v: v["level"])
        for j, method in enumerate(doc["methods"]):
            pts = [(v["level"], v["drift"].get(method, {}).get(metric)) for v in vs]
            pts = [(x, d) for x, d in pts if d and d.get("mean") is not None]
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ys = [d["mean"] for _, d in pts]
            err = [
                [
                    d["mean"] - (d["ci_low"] if d["ci_low"] is not None else d["mean"])
                    for _, d in pts
                ],
                [
                    (d["ci_high"] if d["ci_high"] is not None else d["mean"]) - d["mean"]
                    for _, d in pts
                ],
            ]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=method, color=f"C{j}")
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel(AXES.get(vs[0]["family"], "level"), fontsize=9)
        ax.set_ylabel(f"{metric} vs reference", fontsize=9)
        if vs[0]["family"] in ("quantization", "precision"):
            ax.invert_xaxis()  # fewer bits = more compression, to the right
        ax.legend(fontsize=7)
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def _variant_table(doc: Mapping[str, Any]) -> str:
    rows = []
    ref_mb = None
    for v in doc["variants"]:
        p, s, info = v["predictions"], v.get("speed") or {}, v.get("info", {})
        ref_mb = info.get("reference_bytes")
        size = info.get("packed_bytes")
        ratio = (s.get("batch_ratio") or {}).get("median")
        spread = s.get("batch_ratio") or {}
        rows.append(
            "<tr>"
            f"<td>{esc(v['spec'])}</td>"
            f"<td>{_ci(p.get('accuracy'), 'value')}</td>"
            f"<td>{_ci(p.get('agreement'), 'value')}</td>"
            f"<td>{_fmt(p.get('mcnemar_p'))}</td>"
            f"<td>{_ci(p.get('prob_shift'), 'value')}</td>"
            f"<td>{_fmt(ratio, 2)} <span class='muted'>[{_fmt(spread.get('min'), 2)}, {_fmt(spread.get('max'), 2)}]</span></td>"
            f"<td>{_fmt(size / 1e6 if size else None, 1)}"
            f"{' / ' + _fmt(ref_mb / 1e6, 1) if ref_mb else ''}</td>"
            "</tr>"
        )
    return (
        "<h2>Predictions, speed and size</h2><table><tr><th>variant</th><th>accuracy</th>"
        "<th>agreement with reference</th><th>McNemar p</th><th>|Δ p(reference label)|</th>"
        "<th>time ratio (batch, median [min, max])</th><th>size MB (packed / reference)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _drift_table(doc: Mapping[str, Any]) -> str:
    rows = []
    for v in doc["variants"]:
        for method in doc["methods"]:
            d = v["drift"].get(method)
            if d is None:
                reason = v.get("skipped", {}).get(method, "not run")
                rows.append(
                    f"<tr><td>{esc(v['spec'])}</td><td>{esc(method)}</td>"
                    f"<td colspan='5' class='muted'>{esc(reason)}</td></tr>"
                )
                continue
            cells = "".join(
                f"<td>{_ci(d.get(m))}</td>" for m in ("spearman", "kendall", "top_k", "sign", "l1")
            )
            rows.append(f"<tr><td>{esc(v['spec'])}</td><td>{esc(method)}</td>{cells}</tr>")
    return (
        f"<h2>Explanation drift (top-k: k = {esc(doc.get('top_k'))})</h2><table><tr><th>variant</th>"
        "<th>method</th><th>Spearman ρ</th><th>Kendall τ</th><th>top-k agreement</th>"
        "<th>sign agreement</th><th>relative L1 change</th></tr>" + "".join(rows) + "</table>"
    )


def _faithfulness_table(doc: Mapping[str, Any]) -> str:
    rows = []
    for v in doc["variants"]:
        for method, per in v.get("faithfulness", {}).items():
            for metric, f in per.items():
                rows.append(
                    f"<tr><td>{esc(v['spec'])}</td><td>{esc(method)}</td><td>{esc(metric)}</td>"
                    f"<td>{_ci(f['reference'])}</td><td>{_ci(f['variant'])}</td>"
                    f"<td>{_ci(f['delta'])}</td><td>{_fmt(f.get('p_value'))}</td></tr>"
                )
    return (
        "<h2>Faithfulness on each model (paired Wilcoxon test)</h2><table><tr><th>variant</th>"
        "<th>method</th><th>metric</th><th>reference</th><th>variant</th><th>Δ</th><th>p</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _ranking(doc: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td>{esc(r['method'])}</td><td>{_fmt(r['mean_rank'], 2)}</td>"
        f"<td>{_fmt(r['mean_spearman'])}</td><td>{esc(r['variants'])}</td></tr>"
        for i, r in enumerate(doc.get("ranking", []), start=1)
    )
    per = "".join(
        f"<tr><td>{esc(v['spec'])}</td><td>{esc(' > '.join(v['stability_ranking']))}</td></tr>"
        for v in doc["variants"]
    )
    return (
        "<h2>Which explanations survive compression</h2><p class='muted'>Methods ranked by mean "
        "Spearman ρ with the reference's attributions under each variant; overall by mean rank.</p>"
        "<table><tr><th>#</th><th>method</th><th>mean rank</th><th>mean ρ</th><th>variants</th></tr>"
        f"{rows}</table><table><tr><th>variant</th><th>most to least stable</th></tr>{per}</table>"
    )


def compare_report(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of a compare result document; returns its path."""
    return write_path(path, compare_html(doc))


def compare_html(doc: Mapping[str, Any]) -> str:
    """The self-contained HTML report of a compare result document."""
    sections: list[str] = [_ranking(doc), _variant_table(doc), _drift_table(doc)]
    for metric in ("spearman", "top_k"):
        uri = drift_plot(doc, metric)
        if uri:
            sections.append(
                f"<h2>{esc(metric)} vs compression</h2><img src='{uri}' alt='{esc(metric)}'>"
            )
    sections.append(_faithfulness_table(doc))
    if doc.get("notes"):
        sections.append("<h2>Notes</h2>" + "".join(f"<p>{esc(n)}</p>" for n in doc["notes"]))
    ref = doc.get("reference", {})
    meta: dict[str, Any] = {
        "reference": doc.get("reference_model"),
        "dataset": f"{doc.get('dataset', {}).get('name')} (n = {doc.get('dataset', {}).get('n')})",
        "explained label": doc.get("target_label"),
        "reference accuracy": _plain(ref.get("accuracy")),
        "environment": ", ".join(f"{k}={v}" for k, v in doc.get("environment", {}).items()),
    }
    return page(f"Compression study: {doc.get('reference_model')}", sections, meta)


def _plain(d: Mapping[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "–"
    return f"{d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
