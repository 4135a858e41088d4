"""Dataset-level importance: what the model relies on across a dataset, per class, with CIs.

Local attributions (one score per word of one text, from a trusted method such as occlusion) are
pooled over a dataset. For every class *c* (the explained label of each text, or its gold label) and
every feature *w* (a word, or an n-gram of consecutive words, lower-cased), over the occurrences of
*w* in the texts of class *c*:

* ``mean``: the mean signed score — how much *w* pushes the model towards *c* when it occurs;
* ``mean_abs``: the mean absolute score — how much *w* moves the prediction either way;
* ``total``: Σ|score| over the class's texts / their number — SHAP's global importance
  (Lundberg & Lee, 2017; a text without *w* counts as 0), which favours frequent words;
* ``n`` occurrences and ``n_texts`` texts, with features under ``min_count`` occurrences or in fewer
  than ``min_texts`` texts left out, so one rare word (or one text repeating it) cannot top the list.

95% intervals are a percentile bootstrap over *texts* (a cluster bootstrap: a resampled text brings
all its occurrences), so words repeated within one text do not fake precision. An n-gram's score is
the sum of its words' scores.

>>> recs = [TextRecord(0, "good film", ["good", "film"], [0.5, 0.1], "pos", "pos"),
...         TextRecord(1, "good fun", ["good", "fun"], [0.3, 0.2], "pos", "pos")]
>>> imp = aggregate(recs, min_count=2, n_boot=200)
>>> [(r["feature"], round(r["mean"], 2), r["n"]) for r in imp.top("pos")]
[('good', 0.4, 2)]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from explainlm.behaviour.results import SavedResult, clean
from explainlm.errors import UserError

FORMAT = "global-importance/1"
RANKS = ("mean", "mean_abs", "total", "lower")
GROUP_BY = ("explained", "gold", "none")


@dataclass
class TextRecord:
    """One explained text, as stored per item: its words, their scores and the prediction."""

    index: int
    text: str
    words: list[str]
    scores: list[float]
    label: str  # the explained label
    predicted: str
    gold: str | None = None
    probs: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_explanation(cls, index: int, e: Any, gold: str | None = None) -> TextRecord:
        return cls(
            index, e.text, list(e.words), list(e.word_scores), e.label, e.predicted, gold, e.probs
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextRecord:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def is_punctuation(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def features_of(
    words: Sequence[str],
    scores: Sequence[float],
    ngram_range: tuple[int, int] = (1, 1),
    *,
    lowercase: bool = True,
    skip_punctuation: bool = True,
) -> list[tuple[str, float]]:
    """(feature, score) for each word n-gram of a text; an n-gram's score sums its words' scores."""
    toks = [w.lower() for w in words] if lowercase else list(words)
    punct = [is_punctuation(w) for w in toks]
    out: list[tuple[str, float]] = []
    lo, hi = ngram_range
    for n in range(lo, hi + 1):
        for i in range(len(toks) - n + 1):
            if skip_punctuation and any(punct[i : i + n]):
                continue
            out.append((" ".join(toks[i : i + n]), float(sum(scores[i : i + n]))))
    return out


def _class_of(rec: TextRecord, group_by: str) -> str:
    if group_by == "gold":
        if rec.gold is None:
            raise UserError("grouping by gold label needs labelled texts")
        return rec.gold
    return "all" if group_by == "none" else rec.label


@dataclass
class GlobalImportance(SavedResult):
    """Per-class feature statistics over a dataset (see the module docstring for definitions).

    ``table``: one row per (class, feature) with at least ``min_count`` occurrences: ``class``,
    ``feature``, ``n``, ``n_texts``, ``mean``/``mean_low``/``mean_high``, ``mean_abs`` (+ CI),
    ``total`` (+ CI). ``strips``: per class and top feature, every occurrence's score (for plots).
    """

    classes: list[str]
    class_counts: dict[str, int]
    table: list[dict[str, Any]]
    strips: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    format: ClassVar[str] = FORMAT

    def top(self, cls: str, k: int = 10, by: str | None = None) -> list[dict[str, Any]]:
        """The ``k`` features of class ``cls`` with the highest ``by`` (default: the result's rank)."""
        by = by or self.meta.get("rank", "mean")
        if by not in RANKS:
            raise UserError(f"rank must be one of {', '.join(RANKS)}")
        if cls not in self.classes:
            raise UserError(f"unknown class {cls!r}; classes: {', '.join(self.classes)}")
        key = "mean_low" if by == "lower" else by
        rows = [r for r in self.table if r["class"] == cls]
        rows.sort(key=lambda r: (-_num(r[key]), r["feature"]))
        return rows[:k]

    # ----------------------------------------------------------------------------- export
    def to_json_doc(self, k: int | None = 20) -> dict[str, Any]:
        """The ``--json`` document: meta and the top ``k`` rows per class (all rows when None)."""
        rows = self.table if k is None else [r for c in self.classes for r in self.top(c, k)]
        return {
            "run_id": self.run_id,
            **self.meta,
            "classes": self.classes,
            "class_counts": self.class_counts,
            "table": clean(rows),
        }

    def full_doc(self) -> dict[str, Any]:
        return {**self.to_json_doc(None), "strips": self.strips}

    @classmethod
    def from_json_doc(cls, doc: dict[str, Any]) -> GlobalImportance:
        skip = ("format", "run_id", "classes", "class_counts", "table", "strips")
        meta = {k: v for k, v in doc.items() if k not in skip}
        table = [{k: _nan(v) for k, v in r.items()} for r in doc["table"]]
        return cls(
            doc["classes"],
            doc["class_counts"],
            table,
            doc.get("strips", {}),
            meta,
            doc.get("run_id"),
        )

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.table)

    def html(self) -> str:
        from explainlm.behaviour.report import importance_html

        return importance_html(self)

    def figure(self) -> Any:
        from explainlm.behaviour.plots import importance_figure

        return importance_figure(self)


def _num(v: Any) -> float:
    return -np.inf if v is None or not np.isfinite(v) else float(v)


def _nan(v: Any) -> Any:
    return float("nan") if v is None else v


def aggregate(
    records: Sequence[TextRecord],
    *,
    ngram_range: tuple[int, int] = (1, 1),
    min_count: int = 5,
    min_texts: int = 2,
    group_by: str = "explained",
    rank: str = "mean",
    lowercase: bool = True,
    skip_punctuation: bool = True,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    strip_k: int = 20,
    max_strip_points: int = 2000,
    meta: dict[str, Any] | None = None,
) -> GlobalImportance:
    """Pool per-text word scores into per-class feature statistics with bootstrap CIs over texts."""
    lo, hi = ngram_range
    if not 1 <= lo <= hi:
        raise UserError(f"ngram_range must be 1 ≤ low ≤ high, got {ngram_range}")
    if min_count < 1 or min_texts < 1 or n_boot < 1 or not 0 < level < 1:
        raise UserError("min_count, min_texts and n_boot must be ≥ 1 and level in (0, 1)")
    if group_by not in GROUP_BY:
        raise UserError(f"group_by must be one of {', '.join(GROUP_BY)}")
    if rank not in RANKS:
        raise UserError(f"rank must be one of {', '.join(RANKS)}")
    if not records:
        raise UserError("no texts to aggregate")
    by_class: dict[str, list[TextRecord]] = {}
    for r in records:
        by_class.setdefault(_class_of(r, group_by), []).append(r)
    classes = sorted(by_class)
    table: list[dict[str, Any]] = []
    strips: dict[str, dict[str, list[float]]] = {}
    for ci, c in enumerate(classes):
        rows, occ = _class_table(
            by_class[c],
            ngram_range,
            (min_count, min_texts),
            lowercase,
            skip_punctuation,
            n_boot,
            level,
            seed + ci,
        )
        for r in rows:
            r["class"] = c
        table += rows
        key = "mean_low" if rank == "lower" else rank
        best = sorted(rows, key=lambda r: (-_num(r[key]), r["feature"]))[:strip_k]
        strips[c] = {r["feature"]: occ[r["feature"]][:max_strip_points] for r in best}
    info = {
        "ngram_range": list(ngram_range),
        "min_count": min_count,
        "min_texts": min_texts,
        "group_by": group_by,
        "rank": rank,
        "n_texts": len(records),
        "n_boot": n_boot,
        "level": level,
        "seed": seed,
        **dict(meta or {}),
    }
    counts = {c: len(by_class[c]) for c in classes}
    return GlobalImportance(classes, counts, table, strips, info)


def _class_table(
    recs: Sequence[TextRecord],
    ngram_range: tuple[int, int],
    minimum: tuple[int, int],
    lowercase: bool,
    skip_punctuation: bool,
    n_boot: int,
    level: float,
    seed: int,
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """Statistics of one class's features; per-text sums feed a vectorised cluster bootstrap."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    occ: dict[str, list[float]] = {}
    rows_i, cols, s_val, a_val = [], [], [], []
    for t, rec in enumerate(recs):
        for feat, score in features_of(
            rec.words,
            rec.scores,
            ngram_range,
            lowercase=lowercase,
            skip_punctuation=skip_punctuation,
        ):
            j = vocab.setdefault(feat, len(vocab))
            occ.setdefault(feat, []).append(score)
            rows_i.append(t)
            cols.append(j)
            s_val.append(score)
            a_val.append(abs(score))
    n, f = len(recs), len(vocab)
    shape = (n, f)
    ones = np.ones(len(cols))
    count = sparse.csr_matrix((ones, (rows_i, cols)), shape=shape)  # duplicates are summed
    signed = sparse.csr_matrix((s_val, (rows_i, cols)), shape=shape)
    absolute = sparse.csr_matrix((a_val, (rows_i, cols)), shape=shape)
    n_occ = np.asarray(count.sum(0)).ravel()
    in_texts = np.asarray((count > 0).sum(0)).ravel()
    keep = np.flatnonzero((n_occ >= minimum[0]) & (in_texts >= minimum[1]))
    if keep.size == 0:
        return [], occ
    count, signed, absolute = count[:, keep], signed[:, keep], absolute[:, keep]
    n_occ = n_occ[keep]
    n_texts = np.asarray((count > 0).sum(0)).ravel()
    s_sum = np.asarray(signed.sum(0)).ravel()
    a_sum = np.asarray(absolute.sum(0)).ravel()
    stats = {"mean": s_sum / n_occ, "mean_abs": a_sum / n_occ, "total": a_sum / n}
    boots = _bootstrap(count, signed, absolute, n, n_boot, seed)
    alpha = (1 - level) / 2
    bounds = {}
    for name, b in boots.items():
        with warnings.catch_warnings():  # a feature absent from every resample: NaN bounds
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(b, [alpha, 1 - alpha], axis=0)
        bounds[name] = q
    names = list(vocab)
    out = []
    for k, j in enumerate(keep):
        row: dict[str, Any] = {"feature": names[j], "n": int(n_occ[k]), "n_texts": int(n_texts[k])}
        for name, value in stats.items():
            row[name] = float(value[k])
            row[f"{name}_low"] = float(bounds[name][0][k])
            row[f"{name}_high"] = float(bounds[name][1][k])
        out.append(row)
    return out, occ


def _bootstrap(
    count: Any, signed: Any, absolute: Any, n: int, n_boot: int, seed: int, block: int = 250
) -> dict[str, np.ndarray]:
    """Resample the class's texts with replacement ``n_boot`` times (multiplicity weights W):
    mean = (W·S)/(W·C), mean_abs = (W·A)/(W·C), total = (W·A)/n; a feature absent from a resample
    gives NaN there (ignored by the quantiles)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"mean": [], "mean_abs": [], "total": []}
    ct, st, at = count.T.tocsr(), signed.T.tocsr(), absolute.T.tocsr()
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        draws = rng.integers(0, n, size=(b, n))
        flat = (np.arange(b)[:, None] * n + draws).ravel()
        w = np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        c = (ct @ w.T).T
        s = (st @ w.T).T
        a = (at @ w.T).T
        with np.errstate(invalid="ignore", divide="ignore"):
            parts["mean"].append(np.where(c > 0, s / c, np.nan))
            parts["mean_abs"].append(np.where(c > 0, a / c, np.nan))
        parts["total"].append(a / n)
    return {k: np.concatenate(v) for k, v in parts.items()}
