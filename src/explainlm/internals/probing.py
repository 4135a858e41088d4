"""Linear probes per layer with a control task (Hewitt & Liang 2019).

For each layer, a standardised logistic regression is trained on pooled activations with
stratified k-fold cross-validation. Accuracy is computed from the out-of-fold predictions of all
texts; its 95% CI is a percentile bootstrap over texts (1,000 resamples of the out-of-fold
correct/incorrect indicators). The control task trains the same probe on a fixed random
permutation of the labels (the label marginals are kept, the text–label link is broken);
selectivity = probe accuracy − control accuracy.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.array([0, 1] * 40)
>>> x = rng.normal(size=(2, 80, 8)); x[1, :, 0] += 3 * y        # layer 1 encodes the label
>>> r = probe(x, y, folds=4)
>>> r.accuracy[1] > r.control[1]
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from explainlm.errors import UserError


@dataclass
class ProbeResult:
    """Per-layer probe accuracy (with 95% bootstrap CI), control accuracy and selectivity."""

    layers: list[str]
    accuracy: list[float]
    ci_low: list[float]
    ci_high: list[float]
    control: list[float]
    control_ci_low: list[float]
    control_ci_high: list[float]
    selectivity: list[float]
    n: int
    folds: int
    classes: list[str]
    majority: float
    directions: list[list[float]] | None = None  # per layer, in the raw feature space (binary)

    def to_json(self, directions: bool = False) -> dict[str, Any]:
        doc = asdict(self)
        if not directions:
            doc.pop("directions")
        doc["ci_method"] = "percentile bootstrap over texts of out-of-fold predictions (1000)"
        doc["control_task"] = "shuffled labels (fixed random permutation)"
        return doc

    def rows(self) -> list[dict[str, Any]]:
        """One dict per layer (for tables)."""
        return [
            {
                "layer": name,
                "accuracy": self.accuracy[k],
                "ci": [self.ci_low[k], self.ci_high[k]],
                "control": self.control[k],
                "selectivity": self.selectivity[k],
            }
            for k, name in enumerate(self.layers)
        ]


def _bootstrap(correct: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    idx = rng.integers(0, len(correct), size=(n_boot, len(correct)))
    means = correct[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _oof(x: np.ndarray, y: np.ndarray, folds: int, seed: int, c: float) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.empty_like(y)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        clf.fit(x[tr], y[tr])
        pred[te] = clf.predict(x[te])
    return pred


def _direction(x: np.ndarray, y: np.ndarray, c: float) -> list[float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(x)
    lr = LogisticRegression(C=c, max_iter=2000).fit(sc.transform(x), y)
    return (lr.coef_[0] / sc.scale_).tolist()


def probe(
    features: np.ndarray | Sequence[np.ndarray],
    labels: Sequence[Any],
    *,
    layer_names: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    c: float = 0.1,
    n_boot: int = 1000,
    directions: bool = False,
    progress: bool = False,
) -> ProbeResult:
    """Probe ``features`` (``[layers, N, d]``, or one ``[N, d]`` array per layer) for ``labels``.

    ``directions=True`` also fits each layer's probe on all texts and keeps its weight vector in the
    raw activation space (binary labels only), for :func:`explainlm.internals.top_examples`.
    """
    y_raw = np.asarray([str(v) for v in labels])
    classes = sorted(set(y_raw.tolist()))
    if len(classes) < 2:
        raise UserError("probing needs at least two distinct labels")
    y = np.searchsorted(np.asarray(classes), y_raw)
    counts = np.bincount(y)
    if counts.min() < folds:
        raise UserError(
            f"every label needs at least {folds} examples for {folds}-fold CV "
            f"(counts: {dict(zip(classes, counts.tolist(), strict=True))})"
        )
    feats = [np.asarray(f, dtype=np.float64) for f in features]
    names = list(layer_names) if layer_names is not None else [str(i) for i in range(len(feats))]
    if len(names) != len(feats):
        raise ValueError("layer_names and features differ in length")
    rng = np.random.default_rng(seed)
    y_ctrl = y[rng.permutation(len(y))]
    res = ProbeResult(
        names, [], [], [], [], [], [], [], len(y), folds, classes, float(counts.max() / len(y))
    )
    if directions:
        res.directions = []
    iterator: Any = feats
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(feats, desc="probes", unit="layer")
    for x in iterator:
        if x.shape[0] != len(y):
            raise ValueError(f"features have {x.shape[0]} rows, labels {len(y)}")
        ok = (_oof(x, y, folds, seed, c) == y).astype(float)
        ok_c = (_oof(x, y_ctrl, folds, seed, c) == y_ctrl).astype(float)
        lo, hi = _bootstrap(ok, rng, n_boot)
        clo, chi = _bootstrap(ok_c, rng, n_boot)
        res.accuracy.append(float(ok.mean()))
        res.ci_low.append(lo)
        res.ci_high.append(hi)
        res.control.append(float(ok_c.mean()))
        res.control_ci_low.append(clo)
        res.control_ci_high.append(chi)
        res.selectivity.append(float(ok.mean() - ok_c.mean()))
        if res.directions is not None and len(classes) == 2:
            res.directions.append(_direction(x, y, c))
    return res


def probe_model(
    wrapper: Any,
    texts: Sequence[str],
    labels: Sequence[Any],
    *,
    pool: str | None = None,
    template: str | None = None,
    include_embed: bool = True,
    max_batch_tokens: int = 4096,
    progress: bool = False,
    **kw: Any,
) -> tuple[ProbeResult, dict[str, np.ndarray]]:
    """Capture pooled residual streams (``embed`` and every ``layers.i.resid_post``) and probe them.

    ``pool`` defaults to ``last`` for decoders (the last token has read the whole text) and ``mean``
    for encoders. Returns the result and the pooled features by point name.
    """
    from explainlm.internals.cache import capture

    if len(texts) != len(labels):
        raise UserError(f"{len(texts)} texts but {len(labels)} labels")
    pool = pool or ("last" if wrapper.is_decoder else "mean")
    points = (["embed"] if include_embed else []) + ["layers.*.resid_post"]
    cache = capture(
        wrapper,
        texts,
        points,
        template=template,
        pool=pool,
        max_batch_tokens=max_batch_tokens,
        progress=progress,
    )
    feats = {p: cache.pooled(p, pool).numpy() for p in cache.points}
    res = probe(list(feats.values()), labels, layer_names=list(feats), progress=progress, **kw)
    return res, feats
