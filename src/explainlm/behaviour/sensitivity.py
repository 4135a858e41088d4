"""Sensitivity curves: how the prediction moves as more words are removed, per dataset, with CIs.

For every text, words are removed (or masked) in two orders: by attribution (highest score first:
the words that most support the explained label) and in random orders (``n_random`` seeded
permutations, averaged per text). At each point of a grid — fractions of the text's words
(``k = round(q·n)``) or absolute numbers of words (``k = min(q, n)``) — we record the drop
f(x) − f(x without the first k words), f being the probability of the explained label, and, for
two-class models, whether the label flipped (f < 0.5). Means and 95% bootstrap CIs are over texts;
the areas under the drop curves are compared with a paired Wilcoxon test.

A model whose prediction collapses when its top-attributed words go, but not when random words go,
depends on few words; flat curves for both say the prediction is robust to word removal. The
attribution curve is the deletion curve of the faithfulness metrics read per dataset (Samek et al.,
2017); the queries go through :func:`explainlm.methods.perturbation.evaluate_masks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from explainlm.behaviour.results import SavedResult
from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.evaluation.faithfulness import ranking, trapezoid
from explainlm.evaluation.stats import bootstrap_ci, paired_test
from explainlm.methods.perturbation import REPLACE, evaluate_masks

ORDERS = ("attribution", "random")
X_KINDS = ("fraction", "count")


def removal_counts(n: int, grid: Sequence[float], x: str) -> np.ndarray:
    """Words removed at each grid point for a text of ``n`` words."""
    g = np.asarray(grid, dtype=np.float64)
    if x == "fraction":
        return np.round(g * n + 1e-9).astype(int)
    return np.minimum(g.astype(int), n)


def _masks(n: int, order: np.ndarray, ks: np.ndarray) -> np.ndarray:
    m = np.ones((len(ks), n), dtype=bool)
    for row, k in zip(m, ks, strict=True):
        row[order[:k]] = False
    return m


def check_options(x: str, replace: str, n_random: int, grid: Sequence[float] | None) -> np.ndarray:
    """Validated grid (default: 0, 0.1, …, 1 for fractions; 0..10 words for counts)."""
    if x not in X_KINDS:
        raise UserError(f"x must be one of {', '.join(X_KINDS)}")
    if replace not in REPLACE:
        raise UserError(f"replace must be one of {', '.join(REPLACE)}")
    if n_random < 1:
        raise UserError("n_random must be at least 1")
    if grid is None:
        grid = np.linspace(0, 1, 11) if x == "fraction" else np.arange(0, 11)
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or np.any(np.diff(g) <= 0) or g[0] < 0:
        raise UserError("the grid needs at least two increasing points from 0 up")
    if x == "fraction" and g[-1] > 1:
        raise UserError("fraction grid points must lie in [0, 1]")
    return g


def text_drops(
    engine: Engine,
    items: Sequence[Item],
    scores: Sequence[Sequence[float]],
    grid: np.ndarray,
    *,
    x: str = "fraction",
    n_random: int = 5,
    replace: str = "remove",
    seed: int = 0,
) -> list[dict[str, list[float]] | None]:
    """Per text: the drop curves by attribution order and (averaged) random orders, and for two
    classes the label flips; ``None`` for a text without words. All texts share the engine's passes."""
    two_class = len(engine.classifier.labels) == 2
    idx = [i for i in range(len(items)) if len(scores[i])]
    plans, masks = [], []
    for i in idx:
        it, sc = items[i], np.asarray(scores[i], dtype=np.float64)
        n = len(it.encoding.word_spans)
        if sc.size != n:
            raise UserError(f"text {it.index + 1}: {sc.size} scores for {n} words")
        ks = removal_counts(n, grid, x)
        uniq, back = np.unique(ks, return_inverse=True)
        rng = np.random.default_rng([seed, it.index])
        orders = [ranking(sc)] + [rng.permutation(n) for _ in range(n_random)]
        masks.append(np.concatenate([_masks(n, o, uniq) for o in orders]))
        plans.append((len(uniq), back))
    values = evaluate_masks(engine, [items[i] for i in idx], masks, "word", replace)
    out: list[dict[str, list[float]] | None] = [None] * len(items)
    for i, (nu, back), v in zip(idx, plans, values, strict=True):
        per_order = v.reshape(1 + n_random, nu)[:, back]  # [orders, grid]
        drop = items[i].target_value - per_order
        rec = {"attribution": drop[0].tolist(), "random": drop[1:].mean(0).tolist()}
        if two_class:
            flipped = (per_order < 0.5).astype(float)
            rec["attribution_flip"] = flipped[0].tolist()
            rec["random_flip"] = flipped[1:].mean(0).tolist()
        out[i] = rec
    return out


def sensitivity_curves(
    engine: Engine,
    items: Sequence[Item],
    scores: Sequence[Sequence[float]],
    *,
    grid: Sequence[float] | None = None,
    x: str = "fraction",
    n_random: int = 5,
    replace: str = "remove",
    seed: int = 0,
    n_boot: int = 2000,
    progress: Any = None,
    chunk_size: int = 32,
) -> SensitivityResult:
    """Curves of the prediction drop as words are removed, by attribution and at random.

    ``items`` come from the engine (their target is the probability of the explained label, see
    :func:`explainlm.evaluation.prepare_items`); ``scores`` are one word-level attribution per item.
    """
    g = check_options(x, replace, n_random, grid)
    if len(items) != len(scores):
        raise UserError("one attribution per text is needed")
    per_text: list[dict[str, list[float]] | None] = []
    for s in range(0, len(items), chunk_size):
        sl = slice(s, s + chunk_size)
        per_text += text_drops(
            engine, items[sl], scores[sl], g, x=x, n_random=n_random, replace=replace, seed=seed
        )
        if progress is not None:
            progress.advance(len(items[sl]))
    meta = {"n_random": n_random, "replace": replace, "seed": seed}
    return from_text_drops(per_text, g, x, n_boot=n_boot, seed=seed, meta=meta)


def from_text_drops(
    per_text: Sequence[dict[str, list[float]] | None],
    grid: np.ndarray,
    x: str,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> SensitivityResult:
    """Summarise stored per-text curves (see :func:`text_drops`)."""
    kept = [i for i, r in enumerate(per_text) if r is not None]
    if not kept:
        raise UserError("no text with words to remove")
    recs = [per_text[i] for i in kept]
    drops = {o: np.array([r[o] for r in recs]) for o in ORDERS}  # type: ignore[index]
    flips = None
    if "attribution_flip" in recs[0]:  # type: ignore[operator]
        flips = {o: np.array([r[f"{o}_flip"] for r in recs]) for o in ORDERS}  # type: ignore[index]
    return summarise(drops, flips, grid, x, kept, n_boot=n_boot, seed=seed, meta=meta)


def summarise(
    drops: dict[str, np.ndarray],
    flips: dict[str, np.ndarray] | None,
    grid: np.ndarray,
    x: str,
    texts: Sequence[int],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> SensitivityResult:
    """Means and bootstrap CIs per grid point, areas under the curves and their paired test."""
    curves: dict[str, dict[str, list[float]]] = {}
    auc: dict[str, dict[str, float]] = {}
    xs = grid if x == "fraction" else grid / max(float(grid.max()), 1.0)
    per_text_auc = {}
    for o in ORDERS:
        d = drops[o]
        c: dict[str, list[float]] = {"drop": [], "low": [], "high": []}
        for j in range(len(grid)):
            m, lo, hi = bootstrap_ci(d[:, j], n_boot=n_boot, seed=seed)
            c["drop"].append(m)
            c["low"].append(lo)
            c["high"].append(hi)
        if flips is not None:
            c.update({"flip": [], "flip_low": [], "flip_high": []})
            for j in range(len(grid)):
                m, lo, hi = bootstrap_ci(flips[o][:, j], n_boot=n_boot, seed=seed)
                c["flip"].append(m)
                c["flip_low"].append(lo)
                c["flip_high"].append(hi)
        curves[o] = c
        per_text_auc[o] = np.array([trapezoid(row, xs) for row in d])
        m, lo, hi = bootstrap_ci(per_text_auc[o], n_boot=n_boot, seed=seed)
        auc[o] = {"value": m, "low": lo, "high": hi}
    diff = per_text_auc["attribution"] - per_text_auc["random"]
    m, lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    p = paired_test(per_text_auc["attribution"], per_text_auc["random"])
    per_text = {
        o: {"drop": drops[o].tolist(), **({"flip": flips[o].tolist()} if flips else {})}
        for o in ORDERS
    }
    return SensitivityResult(
        grid=grid.tolist(),
        x=x,
        curves=curves,
        auc=auc,
        difference={"value": m, "low": lo, "high": hi, "p_value": p},
        texts=list(texts),
        per_text=per_text,
        meta={"n_texts": len(texts), **dict(meta or {})},
    )


@dataclass
class SensitivityResult(SavedResult):
    """Drop curves by order (mean and 95% CI per grid point), AUCs and their paired difference."""

    grid: list[float]
    x: str
    curves: dict[str, dict[str, list[float]]]
    auc: dict[str, dict[str, float]]
    difference: dict[str, float]
    texts: list[int] = field(default_factory=list)
    per_text: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    format: ClassVar[str] = "global-sensitivity/1"

    def reading(self) -> str:
        """The curves in plain words."""
        a, r, d = self.auc["attribution"], self.auc["random"], self.difference
        unit = "share of words removed" if self.x == "fraction" else "words removed (scaled to 1)"
        text = (
            f"Averaged over the {unit}, removing words in attribution order lowers the probability "
            f"of the explained label by {a['value']:.3f} (95% CI {a['low']:.3f}–{a['high']:.3f}), "
            f"random order by {r['value']:.3f} ({r['low']:.3f}–{r['high']:.3f}). "
        )
        if d["low"] > 0 and d["p_value"] < 0.05:
            text += (
                f"The attribution order hurts more (difference {d['value']:.3f}, p = "
                f"{d['p_value']:.1g}): the prediction rests on the words the attributions name."
            )
        else:
            text += (
                "The two orders do not differ clearly: either the attributions do not find the "
                "words the prediction rests on, or it rests on many words evenly."
            )
        return text

    def to_json_doc(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **self.meta,
            "grid": self.grid,
            "x": self.x,
            "curves": self.curves,
            "auc": self.auc,
            "difference": self.difference,
            "reading": self.reading(),
        }

    def full_doc(self) -> dict[str, Any]:
        return {**self.to_json_doc(), "texts": self.texts, "per_text": self.per_text}

    @classmethod
    def from_json_doc(cls, doc: dict[str, Any]) -> SensitivityResult:
        keys = ("grid", "x", "curves", "auc", "difference", "texts", "per_text")
        meta = {k: v for k, v in doc.items() if k not in (*keys, "format", "run_id", "reading")}
        return cls(**{k: doc.get(k, {}) for k in keys}, meta=meta, run_id=doc.get("run_id"))

    def to_pandas(self) -> Any:
        """One row per (order, grid point): mean drop and CI (and flip rate for two classes)."""
        import pandas as pd

        rows = []
        for o, c in self.curves.items():
            for j, q in enumerate(self.grid):
                rows.append({"order": o, self.x: q, **{k: v[j] for k, v in c.items()}})
        return pd.DataFrame(rows)

    def html(self) -> str:
        from explainlm.behaviour.report import sensitivity_html

        return sensitivity_html(self)

    def figure(self) -> Any:
        from explainlm.behaviour.plots import GREY, RED, curve_figure

        label = "share of words removed" if self.x == "fraction" else "words removed"
        series = [
            {
                "label": f"{o} order",
                "x": self.grid,
                "y": c["drop"],
                "low": c["low"],
                "high": c["high"],
                "color": RED if o == "attribution" else GREY,
            }
            for o, c in self.curves.items()
        ]
        title = f"Sensitivity ({self.meta.get('method', 'attribution')} order vs random)"
        return curve_figure(label, "drop in p(explained label)", series, title, hline=0.0)
