"""The two surrogate kinds, each fitted along its complexity curve on 0/1 word features.

* :func:`fit_tree`: CART trees of depth 1..``max_depth`` (the curve); the tree of depth
  ``tree_depth`` is reported, its rules printed with ``export_text`` in words;
* :func:`fit_logistic`: L1-regularised logistic regressions along the regularisation path (the
  curve: fidelity against the number of words with a non-zero weight); the reported one has the
  best cross-validated fidelity among those with at most ``max_nonzero`` words.

Each returns ``(model, complexity, curve, readout)``; fidelities are bootstrap CIs
(:func:`fidelity_ci`). :mod:`explainlm.behaviour.surrogate` runs them and reports.

>>> readable_rules("|--- \ue000bad\ue000 <= 0.50")
"|--- 'bad' absent"
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from explainlm.evaluation.stats import bootstrap_ci

Fit = tuple[Any, dict[str, Any], list[dict[str, Any]], dict[str, Any]]


def fidelity_ci(hits: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    """Mean of the 0/1 agreements ``hits`` with its 95% bootstrap interval."""
    m, lo, hi = bootstrap_ci(hits.astype(float), n_boot=n_boot, seed=seed)
    return {"value": m, "low": lo, "high": hi}


def _l1_logistic(c: float, seed: int, multiclass: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    solver = "saga" if multiclass else "liblinear"
    kw: dict[str, Any] = {"C": c, "solver": solver, "random_state": seed, "max_iter": 5000}
    if solver == "liblinear":  # liblinear penalises the intercept: make that penalty negligible
        kw["intercept_scaling"] = 100.0
    if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
        kw["l1_ratio"] = 1.0  # scikit-learn ≥ 1.8: the penalty follows l1_ratio
    else:  # pragma: no cover - older scikit-learn
        kw["penalty"] = "l1"
    return LogisticRegression(**kw)


def _nonzero(model: Any) -> int:
    return int(np.count_nonzero(np.any(model.coef_ != 0, axis=0)))


def fit_tree(
    x_tr: Any, y_tr: np.ndarray, x_te: Any, y_te: np.ndarray, names: list[str], **kw: Any
) -> Fit:
    from sklearn.tree import DecisionTreeClassifier, export_text

    seed, n_boot = int(kw["seed"]), int(kw["n_boot"])
    curve, chosen = [], None
    for depth in range(1, max(int(kw["max_depth"]), int(kw["tree_depth"])) + 1):
        m = DecisionTreeClassifier(max_depth=depth, random_state=seed).fit(x_tr, y_tr)
        f = fidelity_ci(m.predict(x_te) == y_te, n_boot, seed)
        curve.append(
            {
                "complexity": depth,
                "leaves": int(m.get_n_leaves()),
                "fidelity": f["value"],
                "low": f["low"],
                "high": f["high"],
                "train_fidelity": float((m.predict(x_tr) == y_tr).mean()),
            }
        )
        if depth == int(kw["tree_depth"]):
            chosen = m
    assert chosen is not None
    rules = readable_rules(export_text(chosen, feature_names=[f"\ue000{n}\ue000" for n in names]))
    complexity = {"depth": int(chosen.get_depth()), "leaves": int(chosen.get_n_leaves())}
    return chosen, complexity, curve, {"rules": rules}


def readable_rules(text: str) -> str:
    """``export_text`` over 0/1 features, as words: ``'w' <= 0.50`` → ``'w' absent``."""
    out = []
    for line in text.splitlines():
        if "\ue000" in line:
            head, word, tail = line.split("\ue000", 2)
            line = f"{head}{word!r} {'absent' if '<=' in tail else 'present'}"
        out.append(line)
    return "\n".join(out)


def fit_logistic(
    x_tr: Any, y_tr: np.ndarray, x_te: Any, y_te: np.ndarray, names: list[str], **kw: Any
) -> Fit:
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    seed, n_boot = int(kw["seed"]), int(kw["n_boot"])
    multi = len(np.unique(y_tr)) > 2
    cs = np.logspace(-2.5, 2, int(kw["n_c"]))
    curve, candidates = [], []
    folds = min(3, int(min(np.unique(y_tr, return_counts=True)[1])))
    for c in cs:
        m = _l1_logistic(float(c), seed, multi).fit(x_tr, y_tr)
        f = fidelity_ci(m.predict(x_te) == y_te, n_boot, seed)
        nz = _nonzero(m)
        curve.append(
            {
                "complexity": nz,
                "C": float(c),
                "fidelity": f["value"],
                "low": f["low"],
                "high": f["high"],
                "train_fidelity": float((m.predict(x_tr) == y_tr).mean()),
            }
        )
        if 0 < nz <= int(kw["max_nonzero"]) and folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            score = cross_val_score(_l1_logistic(float(c), seed, multi), x_tr, y_tr, cv=cv).mean()
            candidates.append((score, -nz, float(c), m))
    if not candidates:  # nothing within the budget: the sparsest model with any weight
        nz_models = [(e["complexity"], e["C"]) for e in curve if e["complexity"] > 0]
        c = min(nz_models)[1] if nz_models else float(cs[-1])
        best = _l1_logistic(c, seed, multi).fit(x_tr, y_tr)
        cv_score = float("nan")
    else:
        cv_score, _, c, best = max(candidates, key=lambda t: (t[0], t[1]))
    complexity = {"nonzero": _nonzero(best), "C": c, "cv_fidelity": float(cv_score)}
    return best, complexity, curve, {"weights": _top_weights(best, names, int(kw["top_weights"]))}


def _top_weights(model: Any, names: list[str], k: int) -> list[dict[str, Any]]:
    """Non-zero weights, largest first: per class for multi-class, towards ``classes_[1]`` for two."""
    classes = [str(c) for c in model.classes_]
    coefs = model.coef_
    rows = []
    if coefs.shape[0] == 1:
        for j in np.argsort(-np.abs(coefs[0]), kind="stable")[:k]:
            if coefs[0, j] != 0:
                rows.append(
                    {"feature": names[j], "weight": float(coefs[0, j]), "class": classes[1]}
                )
        return rows
    for ci, cls in enumerate(classes):
        for j in np.argsort(-np.abs(coefs[ci]), kind="stable")[:k]:
            if coefs[ci, j] != 0:
                rows.append({"feature": names[j], "weight": float(coefs[ci, j]), "class": cls})
    return rows
