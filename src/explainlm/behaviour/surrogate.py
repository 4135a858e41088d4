"""Global surrogates: small, readable models trained to imitate a model's predictions.

A surrogate is fitted to the *model's* labels (not the gold labels) on bag-of-words features — word
units and n-grams, lower-cased, present/absent — or on a given vocabulary (for instance the top
attributed words of a dataset-level importance run). What matters is its **fidelity**: the share of
held-out texts on which it predicts what the model predicts (Craven & Shavlik, 1996). We report it
with a 95% bootstrap interval, next to the fidelity of the trivial surrogate (always the model's most
frequent label) and, when gold labels exist, the accuracy of surrogate and model on them.

* ``tree``: a CART decision tree (scikit-learn) of depth ``tree_depth``, printed with
  ``export_text``; the curve runs over depths 1..``max_depth``.
* ``logistic``: an L1-regularised logistic regression; the curve runs along the regularisation path
  (fidelity against the number of words with a non-zero weight). The reported model is the one with
  the best cross-validated fidelity (on the training split) among those with at most
  ``max_nonzero`` words.

>>> texts = ["good film", "bad film", "good plot", "bad plot"] * 10
>>> preds = ["pos", "neg", "pos", "neg"] * 10
>>> rep = fit_surrogates(texts, preds, kinds=("tree",), tree_depth=1, max_depth=2, min_df=1)[0]
>>> rep.fidelity["value"]
1.0
>>> print(rep.rules)
|--- 'bad' absent
|   |--- class: pos
|--- 'bad' present
|   |--- class: neg
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from explainlm.behaviour.importance import features_of
from explainlm.behaviour.results import SavedResult
from explainlm.behaviour.surrogate_models import fidelity_ci, fit_logistic, fit_tree
from explainlm.errors import UserError

KINDS = ("tree", "logistic")
CITATION = "Craven & Shavlik (1996), Extracting Tree-Structured Representations of Trained Networks"


def text_features(
    text: str, ngram_range: tuple[int, int] = (1, 1), lowercase: bool = True
) -> list[str]:
    """The features of a text: its word units and word n-grams (punctuation-only words skipped)."""
    from explainlm.models.words import split_words

    words = [text[s:e] for s, e in split_words(text)]
    return [f for f, _ in features_of(words, [0.0] * len(words), ngram_range, lowercase=lowercase)]


class _Analyzer:
    """A picklable CountVectorizer analyzer over explainlm's word units."""

    def __init__(self, ngram_range: tuple[int, int], lowercase: bool) -> None:
        self.ngram_range = ngram_range
        self.lowercase = lowercase

    def __call__(self, text: str) -> list[str]:
        return text_features(text, self.ngram_range, self.lowercase)


@dataclass
class SurrogateReport:
    """One fitted surrogate: fidelity with CIs, accuracy for comparison, curve, rules or weights."""

    kind: str
    feature_set: str
    complexity: dict[str, Any]
    fidelity: dict[str, float]
    train_fidelity: float
    baseline_fidelity: dict[str, float]
    curve: list[dict[str, Any]]
    n_train: int
    n_test: int
    n_features: int
    gold_accuracy: dict[str, float] | None = None
    model_accuracy: dict[str, float] | None = None
    rules: str = ""
    weights: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""
    fit_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SurrogateReport:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def verdict(kind: str, fid: dict[str, float], base: dict[str, float], n_test: int) -> str:
    """How far the surrogate can be trusted as a description of the model, in plain words."""
    what = "tree" if kind == "tree" else "sparse linear model"
    lo, hi, v = fid["low"], fid["high"], fid["value"]
    head = (
        f"The {what} predicts what the model predicts on {v:.1%} of {n_test} held-out texts "
        f"(95% CI {lo:.1%}–{hi:.1%}); always answering the model's most common label would agree "
        f"{base['value']:.1%} of the time. "
    )
    if v - base["value"] < 0.05:
        body = (
            "It is barely better than that trivial rule: it does not describe the model; do not "
            "read its rules or weights as the model's logic."
        )
    elif lo >= 0.95:
        body = (
            "At this size it is a faithful description of the model on texts like these: its rules "
            "can be read as what the model does, though a word it uses may stand in for correlated "
            "words the model actually relies on (check with local attributions)."
        )
    elif lo >= 0.85:
        body = (
            f"It is an approximate description: it disagrees with the model on about "
            f"{1 - v:.0%} of texts, so read its rules as hypotheses about the model, to be checked "
            "with local attributions, not as the model's logic."
        )
    else:
        body = (
            f"It is not a reliable description: it disagrees with the model on {1 - v:.0%} of "
            "texts, so the model relies on more than a few words (word order, context, "
            "interactions); use the curve to see how much complexity fidelity needs."
        )
    return head + body


def split_indices(
    model_labels: Sequence[str], test_size: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out positions, stratified by the model's label when every label has 2+."""
    from sklearn.model_selection import train_test_split

    y = np.asarray([str(v) for v in model_labels])
    _, counts = np.unique(y, return_counts=True)
    strat = y if len(counts) > 1 and counts.min() >= 2 else None
    return train_test_split(
        np.arange(len(y)), test_size=test_size, random_state=seed, stratify=strat
    )


def fit_surrogates(
    texts: Sequence[str],
    model_labels: Sequence[str],
    gold: Sequence[str | None] | None = None,
    *,
    kinds: Sequence[str] = KINDS,
    vocabulary: Sequence[str] | None = None,
    feature_set: str | None = None,
    ngram_range: tuple[int, int] = (1, 1),
    lowercase: bool = True,
    min_df: int = 2,
    test_size: float = 0.3,
    tree_depth: int = 3,
    max_depth: int = 8,
    max_nonzero: int = 50,
    n_c: int = 12,
    top_weights: int = 20,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[SurrogateReport]:
    """Fit each surrogate kind to the model's labels; report held-out fidelity, curve and readout."""
    _check_options(texts, model_labels, gold, kinds, test_size, tree_depth, max_depth, max_nonzero)
    y = np.asarray([str(v) for v in model_labels])
    counts = _label_counts(y)
    tr, te = split_indices(y, test_size, seed)
    x_tr, x_te, names = _word_features(
        texts, tr, te, vocabulary=vocabulary, ngram_range=ngram_range, lowercase=lowercase,
        min_df=min_df,
    )  # fmt: skip
    data = _Split(x_tr, y[tr], x_te, y[te], names)
    gold_te = (
        None if gold is None else np.asarray([None if g is None else str(g) for g in gold])[te]
    )
    majority = max(counts, key=lambda c: (int((y[tr] == c).sum()), c))
    base = fidelity_ci(y[te] == majority, n_boot, seed)
    fs = feature_set or ("vocabulary" if vocabulary is not None else "bow")
    options = {
        "tree_depth": tree_depth, "max_depth": max_depth, "max_nonzero": max_nonzero, "n_c": n_c,
        "top_weights": top_weights, "n_boot": n_boot, "seed": seed,
    }  # fmt: skip
    return [_fit_one(kind, fs, data, base, gold_te, options) for kind in kinds]


def _check_options(
    texts: Sequence[str],
    model_labels: Sequence[str],
    gold: Sequence[str | None] | None,
    kinds: Sequence[str],
    test_size: float,
    tree_depth: int,
    max_depth: int,
    max_nonzero: int,
) -> None:
    if len(texts) != len(model_labels) or (gold is not None and len(gold) != len(texts)):
        raise UserError("texts, model labels and gold labels must have the same length")
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise UserError(f"unknown surrogate kind(s) {', '.join(bad)}; known: {', '.join(KINDS)}")
    if not 0 < test_size < 1 or tree_depth < 1 or max_depth < 1 or max_nonzero < 1:
        raise UserError("test_size in (0, 1); tree_depth, max_depth and max_nonzero ≥ 1")


def _label_counts(y: np.ndarray) -> dict[str, int]:
    """How often the model predicts each label; refuses too few texts or a single label."""
    if len(y) < 10:
        raise UserError(f"a surrogate needs at least 10 texts, got {len(y)}")
    counts = {c: int((y == c).sum()) for c in np.unique(y)}
    if len(counts) < 2:
        raise UserError(
            f"the model predicts {str(next(iter(counts)))!r} for every text: there is nothing to imitate"
        )
    return counts


def _word_features(
    texts: Sequence[str],
    tr: np.ndarray,
    te: np.ndarray,
    *,
    vocabulary: Sequence[str] | None,
    ngram_range: tuple[int, int],
    lowercase: bool,
    min_df: int,
) -> tuple[Any, Any, list[str]]:
    """0/1 word features of the training and held-out texts, and the features' names."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(
        analyzer=_Analyzer(ngram_range, lowercase),
        binary=True,
        min_df=1 if vocabulary is not None else min_df,
        vocabulary=list(dict.fromkeys(vocabulary)) if vocabulary is not None else None,
    )
    docs = list(texts)
    try:
        x_tr = vec.fit_transform([docs[i] for i in tr])
    except ValueError as e:  # empty vocabulary
        raise UserError(f"no features left for the surrogate ({e}); lower min_df") from None
    x_te = vec.transform([docs[i] for i in te])
    return x_tr, x_te, list(vec.get_feature_names_out())


@dataclass
class _Split:
    """Training and held-out features and model labels."""

    x_tr: Any
    y_tr: np.ndarray
    x_te: Any
    y_te: np.ndarray
    names: list[str]


def _fit_one(
    kind: str,
    feature_set: str,
    data: _Split,
    base: dict[str, float],
    gold_te: np.ndarray | None,
    options: dict[str, Any],
) -> SurrogateReport:
    """Fit one surrogate kind and report it: fidelity, accuracy on gold labels, verdict."""
    import time

    start = time.perf_counter()
    n_boot, seed = options["n_boot"], options["seed"]
    fit = fit_tree if kind == "tree" else fit_logistic
    model, complexity, curve, readout = fit(
        data.x_tr, data.y_tr, data.x_te, data.y_te, data.names, **options
    )
    pred = model.predict(data.x_te)
    fid = fidelity_ci(pred == data.y_te, n_boot, seed)
    rep = SurrogateReport(
        kind=kind,
        feature_set=feature_set,
        complexity=complexity,
        fidelity=fid,
        train_fidelity=float((model.predict(data.x_tr) == data.y_tr).mean()),
        baseline_fidelity=base,
        curve=curve,
        n_train=len(data.y_tr),
        n_test=len(data.y_te),
        n_features=len(data.names),
        **readout,
    )
    if gold_te is not None:
        has = np.asarray([g is not None for g in gold_te])
        if has.any():
            rep.gold_accuracy = fidelity_ci(pred[has] == gold_te[has], n_boot, seed)
            rep.model_accuracy = fidelity_ci(data.y_te[has] == gold_te[has], n_boot, seed)
    rep.verdict = verdict(kind, fid, base, len(data.y_te))
    rep.fit_seconds = time.perf_counter() - start
    return rep


@dataclass
class SurrogateResult(SavedResult):
    """The surrogates of one run (one per kind and feature set) and what they were fitted on."""

    reports: list[SurrogateReport]
    meta: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    format: ClassVar[str] = "global-surrogate/1"
    citation: ClassVar[str] = CITATION

    def report(self, kind: str, feature_set: str | None = None) -> SurrogateReport:
        for r in self.reports:
            if r.kind == kind and (feature_set is None or r.feature_set == feature_set):
                return r
        raise UserError(f"no {kind} surrogate{' on ' + feature_set if feature_set else ''}")

    def to_json_doc(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            **self.meta,
            "surrogates": [r.to_dict() for r in self.reports],
        }

    @classmethod
    def from_json_doc(cls, doc: dict[str, Any]) -> SurrogateResult:
        meta = {k: v for k, v in doc.items() if k not in ("format", "run_id", "surrogates")}
        reports = [SurrogateReport.from_dict(d) for d in doc["surrogates"]]
        return cls(reports, meta, doc.get("run_id"))

    def to_pandas(self) -> Any:
        """The complexity–fidelity curves: one row per (surrogate, complexity)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"kind": r.kind, "feature_set": r.feature_set, **p}
                for r in self.reports
                for p in r.curve
            ]
        )

    def html(self) -> str:
        from explainlm.behaviour.report import surrogate_html

        return surrogate_html(self)

    def figure(self) -> Any:
        from explainlm.behaviour.plots import surrogate_figure

        return surrogate_figure(self)
