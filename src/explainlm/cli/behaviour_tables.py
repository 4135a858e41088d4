"""Terminal tables of ``explainlm global`` results (importance, surrogates, sensitivity, layers)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from explainlm.cli.common import console


def _ci(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def _trust(meta: dict[str, Any]) -> None:
    for t in meta.get("trust", []) or []:
        style = "green" if t.get("ok") else "yellow"
        console.print(f"[{style}]{t['text']}[/{style}]", soft_wrap=True, highlight=False)


def print_importance(imp: Any, rank: str, top: int) -> None:
    """The trust check, then the ``top`` features of each class ranked by ``rank``."""
    _trust(imp.meta)
    for cls in imp.classes:
        t = Table(title=f"{cls} · {imp.class_counts[cls]} texts · ranked by {rank}")
        for col in ("feature", "n", "texts", "mean [95% CI]", "mean |score|", "Σ|score|/texts"):
            t.add_column(col, justify="left" if col == "feature" else "right")
        for r in imp.top(cls, top):
            t.add_row(
                r["feature"],
                str(r["n"]),
                str(r["n_texts"]),
                f"{r['mean']:+.4f} [{r['mean_low']:+.4f}, {r['mean_high']:+.4f}]",
                f"{r['mean_abs']:.4f}",
                f"{r['total']:.4f}",
            )
        console.print(t)
    console.print(f"run {imp.run_id}", style="dim")


def print_surrogates(res: Any) -> None:
    """Fidelity of each surrogate, then its verdict and its rules or weights."""
    t = Table(title=f"surrogates of {res.meta.get('model')} · {res.meta.get('n_texts')} texts")
    for col in (
        "surrogate",
        "features",
        "size",
        "held-out fidelity",
        "most-common label",
        "gold acc. (surrogate / model)",
    ):
        t.add_column(col)
    for r in res.reports:
        size = ", ".join(
            f"{k}={v}" for k, v in r.complexity.items() if k in ("depth", "leaves", "nonzero")
        )
        gold = f"{_ci(r.gold_accuracy)} / {_ci(r.model_accuracy)}" if r.gold_accuracy else "–"
        t.add_row(r.kind, r.feature_set, size, _ci(r.fidelity), _ci(r.baseline_fidelity), gold)
    console.print(t)
    for r in res.reports:
        console.print(f"\n[bold]{r.kind} on {r.feature_set}[/bold]: {r.verdict}", soft_wrap=True)
        if r.rules:
            console.print(r.rules, markup=False, highlight=False)
        if r.weights:
            console.print(
                ", ".join(f"{w['feature']} {w['weight']:+.2f}" for w in r.weights[:15]),
                markup=False,
            )
    console.print(f"run {res.run_id}", style="dim")


def print_sensitivity(res: Any) -> None:
    """The prediction drop along the grid, in attribution order and in random order."""
    t = Table(title=f"sensitivity of {res.meta.get('model')} · {res.meta.get('n_texts')} texts")
    t.add_column("share removed" if res.x == "fraction" else "words removed")
    t.add_column("drop · attribution order")
    t.add_column("drop · random order")
    for j, q in enumerate(res.grid):
        a, r = res.curves["attribution"], res.curves["random"]
        t.add_row(
            f"{q:g}",
            f"{a['drop'][j]:.3f} [{a['low'][j]:.3f}, {a['high'][j]:.3f}]",
            f"{r['drop'][j]:.3f} [{r['low'][j]:.3f}, {r['high'][j]:.3f}]",
        )
    console.print(t)
    console.print(res.reading(), soft_wrap=True)
    console.print(f"run {res.run_id}", style="dim")


def print_layers(res: Any) -> None:
    """Per text (the first five), each hook point's total and its strongest positions."""
    for i, t in enumerate(res.texts):
        tab = Table(title=f"{t['text'][:70]} → {t['predicted']} (explaining {t['label']})")
        tab.add_column("point")
        tab.add_column("Σ")
        tab.add_column("strongest positions")
        for p, row in zip(res.points, t["scores"], strict=True):
            order = sorted(range(len(row)), key=lambda k: -abs(row[k]))[:4]
            tops = ", ".join(
                f"{t['tokens'][k].strip() or repr(t['tokens'][k])} {row[k]:+.3g}" for k in order
            )
            tab.add_row(p, f"{sum(row):+.3g}", tops)
        console.print(tab)
        if i >= 4 and len(res.texts) > 5:
            console.print(f"… {len(res.texts) - 5} more texts in --output / --json", style="dim")
            break
    console.print(f"run {res.run_id}", style="dim")
