"""Benchmark outputs: Markdown, CSV and Parquet tables, and a self-contained HTML page with plots
(PNG images embedded as base64 data URIs; no external resources)."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explainlm.report.html import esc, page, write_path


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return str(v)


def _row_key(r: dict[str, Any], keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(r.get(k) for k in keys)


def markdown_table(
    table: Sequence[dict[str, Any]], higher: dict[str, bool], keys: Sequence[str] = ("method",)
) -> str:
    """Methods × metrics: ``mean [ci_low, ci_high]``; the header says which direction is better.

    ``keys`` name the row columns: ``("group", "method")`` for the per-annotator-group table.
    """
    rows = list(dict.fromkeys(_row_key(r, keys) for r in table))
    metrics = list(dict.fromkeys(r["metric"] for r in table))
    cell = {(_row_key(r, keys), r["metric"]): r for r in table}
    head = (
        "| "
        + " | ".join(keys)
        + " | "
        + " | ".join(f"{m} {'↑' if higher.get(m, True) else '↓'}" for m in metrics)
        + " |"
    )
    lines = [head, "|" + "---|" * (len(metrics) + len(keys))]
    for key in rows:
        cells = []
        for mt in metrics:
            r = cell.get((key, mt))
            cells.append(
                "–"
                if r is None
                else f"{_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            )
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_tests(tests: Sequence[dict[str, Any]]) -> str:
    lines = ["| metric | a | b | p-value | n |", "|---|---|---|---|---|"]
    for t in tests:
        lines.append(
            f"| {t['metric']} | {t['a']} | {t['b']} | {_fmt(t['p_value'])} | {t.get('n', '')} |"
        )
    return "\n".join(lines)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def metric_bars_png(table: Sequence[dict[str, Any]]) -> str:
    """One panel per metric: the methods' means with 95% CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(r["metric"] for r in table))
    cols = min(3, len(metrics)) or 1
    rows = math.ceil(len(metrics) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, mt in zip(axes.flat, metrics, strict=False):
        rs = [
            r
            for r in table
            if r["metric"] == mt and r["mean"] is not None and np.isfinite(r["mean"])
        ]
        ys = [r["mean"] for r in rs]
        err = [[r["mean"] - r["ci_low"] for r in rs], [r["ci_high"] - r["mean"] for r in rs]]
        ax.bar(range(len(rs)), ys, yerr=err, capsize=3, color="#4f7cff")
        ax.set_xticks(
            range(len(rs)), [r["method"] for r in rs], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(mt, fontsize=10)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def mean_curves(
    rows: Sequence[dict[str, Any]], metric: str, grid: int = 21
) -> dict[str, np.ndarray]:
    """Per method, the mean of the examples' curves interpolated on a common 0..1 grid."""
    xs = np.linspace(0, 1, grid)
    acc: dict[str, list[np.ndarray]] = {}
    for r in rows:
        if r["metric"] == metric and r.get("curve"):
            x, y = r["curve"]
            if len(x) > 1:
                acc.setdefault(r["method"], []).append(np.interp(xs, x, y))
    return {m: np.mean(v, axis=0) for m, v in acc.items()}


def curves_png(rows: Sequence[dict[str, Any]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [m for m in ("deletion_auc", "insertion_auc") if mean_curves(rows, m)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    xs = np.linspace(0, 1, 21)
    for ax, m in zip(axes.flat, panels, strict=True):
        for method, ys in mean_curves(rows, m).items():
            ax.plot(xs, ys, label=method)
        ax.set_title(m.replace("_auc", "") + " curve (most relevant first)", fontsize=10)
        ax.set_xlabel("fraction of units removed" if m.startswith("del") else "fraction inserted")
        ax.set_ylabel("p(label)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    uri = _png(fig)
    plt.close(fig)
    return uri


def html_table(
    table: Sequence[dict[str, Any]], higher: dict[str, bool], keys: Sequence[str] = ("method",)
) -> str:
    rows = list(dict.fromkeys(_row_key(r, keys) for r in table))
    metrics = list(dict.fromkeys(r["metric"] for r in table))
    cell = {(_row_key(r, keys), r["metric"]): r for r in table}
    head = "".join(f"<th>{esc(m)} {'↑' if higher.get(m, True) else '↓'}</th>" for m in metrics)
    body = []
    for key in rows:
        tds = []
        for mt in metrics:
            r = cell.get((key, mt))
            txt = (
                "–"
                if r is None
                else f"{_fmt(r['mean'])} <span class='muted'>[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]</span>"
            )
            tds.append(f"<td>{txt}</td>")
        labels = "".join(f"<td class='label'>{esc(k)}</td>" for k in key)
        body.append(f"<tr>{labels}{''.join(tds)}</tr>")
    keys_head = "".join(f"<th>{esc(k)}</th>" for k in keys)
    return f"<table><tr>{keys_head}{head}</tr>{''.join(body)}</table>"


def html_report(res: Any) -> str:
    higher = res.result.higher_is_better
    sections = [
        "<h2>Methods × metrics (mean, 95% bootstrap CI)</h2>" + html_table(res.table, higher),
        f"<img alt='metric bars with 95% CIs' src='{metric_bars_png(res.table)}'>",
    ]
    if res.by_group:
        sections.append(
            "<h2>Per annotator group (mean, 95% bootstrap CI)</h2>"
            + html_table(res.by_group, higher, ("group", "method"))
        )
    curves = curves_png(res.result.rows)
    if curves:
        sections.append(f"<h2>Deletion and insertion curves</h2><img alt='curves' src='{curves}'>")
    tests = "".join(
        f"<tr><td>{esc(t['metric'])}</td><td>{esc(t['a'])}</td><td>{esc(t['b'])}</td>"
        f"<td>{_fmt(t['p_value'])}</td><td>{esc(t.get('n', ''))}</td></tr>"
        for t in res.tests
    )
    sections.append(
        f"<h2>Paired tests ({esc(res.params.get('test', 'wilcoxon'))})</h2><table><tr><th>metric</th>"
        f"<th>a</th><th>b</th><th>p-value</th><th>n</th></tr>{tests}</table>"
    )
    if res.result.agreement:
        pairs: dict[tuple[str, str], list[float]] = {}
        for a in res.result.agreement:
            pairs.setdefault((a["a"], a["b"]), []).append(a["spearman"])
        rows = "".join(
            f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{_fmt(float(np.nanmean(v)) if np.isfinite(v).any() else None)}</td></tr>"
            for (a, b), v in pairs.items()
        )
        sections.append(
            "<h2>Agreement between methods (mean Spearman ρ)</h2><table><tr><th>a</th><th>b</th>"
            f"<th>ρ</th></tr>{rows}</table>"
        )
    meta = {"model": res.model, "dataset": res.dataset, "examples": res.n, "run": res.run_id}
    return page("explainlm benchmark", sections, meta)


def write_outputs(res: Any, folder: Path) -> list[Path]:
    """``results.md``, ``table.csv``, ``tests.csv``, ``rows.parquet`` and ``report.html`` in ``folder``."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    higher = res.result.higher_is_better
    md = folder / "results.md"
    md.write_text(
        f"# Benchmark {res.run_id}\n\nmodel: `{res.model}` · dataset: `{res.dataset}` · "
        f"examples: {res.n}\n\n## Mean [95% bootstrap CI]\n\n{markdown_table(res.table, higher)}\n\n"
        f"## Paired tests\n\n{markdown_tests(res.tests)}\n"
        + (
            f"\n## Per annotator group\n\n{markdown_table(res.by_group, higher, ('group', 'method'))}\n"
            if res.by_group
            else ""
        ),
        encoding="utf-8",
    )
    table = folder / "table.csv"
    pd.DataFrame(res.table).to_csv(table, index=False)
    tests = folder / "tests.csv"
    pd.DataFrame(res.tests).to_csv(tests, index=False)
    rows = folder / "rows.parquet"
    frame = res.result.to_pandas()
    if "group" in frame and frame["group"].isna().all():
        frame = frame.drop(columns=["group"])
    for c in frame.columns:
        if frame[c].dtype == object and c not in (
            "example",
            "method",
            "metric",
            "text",
            "group",
            "note",
        ):
            frame[c] = frame[c].map(lambda v: None if v is None else str(v))
    frame["example"] = frame["example"].astype(str)
    frame.to_parquet(rows, index=False)
    html = write_path(folder / "report.html", html_report(res))
    return [md, table, tests, rows, html]
