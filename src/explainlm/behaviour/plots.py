"""Matplotlib figures of global results (PNG/SVG files, or inline SVG inside the HTML reports).

Red marks scores that push towards the class (or the explained label), blue against it, as in the
explanation heat maps.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from explainlm.behaviour.importance import GlobalImportance

RED, BLUE, GREY, INK = "#dc2626", "#2563eb", "#9ca3af", "#1d1d1f"
RANK_LABELS = {
    "mean": "mean score when present (towards the class)",
    "mean_abs": "mean |score| when present",
    "total": "Σ|score| / texts (SHAP-style global importance)",
    "lower": "lower 95% bound of the mean score",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a figure as PNG (150 dpi) or SVG, and close it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight", format=out.suffix.lstrip(".").lower())
    _plt().close(fig)
    return out


def figure_svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (for self-contained HTML), and close it."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def importance_figure(imp: GlobalImportance, k: int = 15, by: str | None = None) -> Any:
    """Per class: a bar chart of the top features with 95% CIs, and a strip of every occurrence."""
    plt = _plt()
    by = by or imp.meta.get("rank", "mean")
    key = "mean" if by == "lower" else by
    n_cls = max(len(imp.classes), 1)
    height = max(2.5, 0.32 * k + 1.2)
    fig, axes = plt.subplots(n_cls, 2, figsize=(11, height * n_cls), squeeze=False)
    for row, cls in enumerate(imp.classes):
        top = imp.top(cls, k, by)[::-1]
        names = [r["feature"] for r in top]
        y = np.arange(len(top))
        ax = axes[row][0]
        vals = np.array([r[key] for r in top])
        err = np.array([[r[key] - r[f"{key}_low"], r[f"{key}_high"] - r[key]] for r in top]).T
        ax.barh(y, vals, color=[RED if v >= 0 else BLUE for v in vals], alpha=0.85)
        if len(top):
            ax.errorbar(vals, y, xerr=np.clip(err, 0, None), fmt="none", ecolor=INK, lw=1)
        ax.set_yticks(y, [f"{n}  (n={r['n']})" for n, r in zip(names, top, strict=True)])
        ax.axvline(0, color=GREY, lw=0.8)
        ax.set_xlabel(RANK_LABELS.get(by, by))
        ax.set_title(f"{cls} · {imp.class_counts.get(cls, 0)} texts", loc="left")
        _strip(axes[row][1], names, [imp.strips.get(cls, {}).get(n, []) for n in names])
    method = imp.meta.get("method", "")
    fig.suptitle(
        f"Dataset-level importance ({method}, 95% bootstrap CIs over texts)", x=0.01, ha="left"
    )
    fig.tight_layout()
    return fig


def _strip(ax: Any, names: Sequence[str], values: Sequence[Sequence[float]]) -> None:
    """A beeswarm-like strip: one dot per occurrence, jittered vertically, coloured by sign."""
    rng = np.random.default_rng(0)
    for i, vs in enumerate(values):
        v = np.asarray(vs, dtype=np.float64)
        if v.size == 0:
            continue
        jitter = rng.uniform(-0.3, 0.3, v.size) * min(1.0, 0.3 + v.size / 200)
        ax.scatter(v, i + jitter, s=7, c=np.where(v >= 0, RED, BLUE), alpha=0.45, lw=0)
    ax.set_yticks(np.arange(len(names)), [""] * len(names))
    ax.axvline(0, color=GREY, lw=0.8)
    ax.set_ylim(-0.6, max(len(names) - 0.4, 0.6))
    ax.set_xlabel("score of each occurrence")


def curve_figure(
    x_label: str,
    y_label: str,
    series: Sequence[dict[str, Any]],
    title: str,
    *,
    hline: float | None = None,
) -> Any:
    """Lines with shaded CI bands; each series: ``label``, ``x``, ``y``, ``low``, ``high``, ``color``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in series:
        x, y = np.asarray(s["x"], float), np.asarray(s["y"], float)
        ax.plot(x, y, marker="o", ms=3.5, color=s.get("color"), label=s["label"])
        if s.get("low") is not None:
            ax.fill_between(x, s["low"], s["high"], color=s.get("color"), alpha=0.18, lw=0)
    if hline is not None:
        ax.axhline(hline, color=GREY, lw=0.8, ls="--")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.25)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def heatmap_figure(
    matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, label: str
) -> Any:
    """A diverging heat map (rows × columns), symmetric colour scale around 0."""
    plt = _plt()
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.nanmax(np.abs(m))) if m.size else 1.0
    fig, ax = plt.subplots(
        figsize=(max(4.0, 0.42 * len(cols) + 2), max(2.5, 0.3 * len(rows) + 1.5))
    )
    im = ax.imshow(m, cmap="bwr", vmin=-scale or -1, vmax=scale or 1, aspect="auto")
    ax.set_xticks(np.arange(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(len(rows)), rows, fontsize=8)
    fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def _path_points(curve: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per complexity: the first one reached (smallest C along an L1 path)."""
    seen: dict[int, dict[str, Any]] = {}
    for p in sorted(curve, key=lambda p: p.get("C", p["complexity"])):
        seen.setdefault(int(p["complexity"]), p)
    return [seen[k] for k in sorted(seen)]


def surrogate_figure(result: Any) -> Any:
    """Complexity–fidelity curves with 95% CIs, one panel per surrogate kind and feature set."""
    plt = _plt()
    reports = list(result.reports)
    cols = min(2, max(len(reports), 1))
    rows = (len(reports) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax in axes.ravel()[len(reports) :]:
        ax.set_visible(False)
    for ax, r in zip(axes.ravel(), reports, strict=False):
        pts = _path_points(r.curve)
        x = [p["complexity"] for p in pts]
        ax.plot(x, [p["fidelity"] for p in pts], marker="o", ms=3.5, color=RED, label="held-out")
        ax.fill_between(
            x, [p["low"] for p in pts], [p["high"] for p in pts], color=RED, alpha=0.18, lw=0
        )
        ax.plot(x, [p["train_fidelity"] for p in pts], ls=":", color=INK, label="training")
        base = r.baseline_fidelity["value"]
        ax.axhline(base, color=GREY, ls="--", lw=0.8, label="most common label")
        chosen = r.complexity.get("depth", r.complexity.get("nonzero"))
        ax.axvline(chosen, color=BLUE, lw=0.8, alpha=0.6, label="reported model")
        ax.set_xlabel("tree depth" if r.kind == "tree" else "words with a non-zero weight")
        if r.kind != "tree":
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(left=-0.3)
        ax.set_ylabel("fidelity (agreement with the model)")
        ax.set_title(f"{r.kind} on {r.feature_set}", loc="left")
        ax.grid(alpha=0.25)
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
