"""``evaluate()``: score explanations users already have with any registered metrics.

>>> from explainlm.explanation import Explanation
>>> e = Explanation(text="a good film", method="m", target="prob", label="positive",
...                 predicted="positive", probs={"positive": 0.9, "negative": 0.1},
...                 words=["a", "good", "film"], word_scores=[0.0, 0.9, 0.1])
>>> res = evaluate([e], metrics=["token_f1"], rationales=[[0, 1, 0]])
>>> res.rows[0]["value"]
1.0
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.evaluation.agreement import method_agreement
from explainlm.evaluation.base import Case, feature_scores, get_metric, prepare_items
from explainlm.evaluation.stats import bootstrap_ci, paired_test
from explainlm.explanation import Explanation
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.targets import ClassTarget

DEFAULT_METRICS = ("comprehensiveness", "sufficiency", "tau_loo")


@dataclass
class EvaluationResult:
    """Per-explanation metric values, with summaries (bootstrap CIs) and paired tests.

    ``rows``: one dict per (explanation, metric): ``example`` (text index or id), ``text``,
    ``method``, ``metric``, ``value``, ``group`` and extras (``curve`` for curve metrics).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in r.items() if k != "curve"} for r in self.rows])

    def summary(
        self, *, n_boot: int = 2000, seed: int = 0, by_group: bool = False
    ) -> list[dict[str, Any]]:
        """Mean and 95% bootstrap CI per (method, metric) (and group)."""
        values: dict[tuple[Any, ...], list[float]] = {}
        for r in self.rows:
            key = (r["method"], r["metric"]) + ((r.get("group"),) if by_group else ())
            values.setdefault(key, []).append(float(r["value"]))
        out = []
        for key, vs in values.items():
            mean, lo, hi = bootstrap_ci(vs, n_boot=n_boot, seed=seed)
            row = {"method": key[0], "metric": key[1], "mean": mean, "ci_low": lo, "ci_high": hi}
            row["n"] = int(np.isfinite(vs).sum())
            if by_group:
                row["group"] = key[2]
            out.append(row)
        return out

    def tests(self, *, test: str = "wilcoxon", seed: int = 0) -> list[dict[str, Any]]:
        """Paired tests between every two methods per metric, paired by example."""
        table: dict[str, dict[str, dict[Any, float]]] = {}
        for r in self.rows:
            key = (r["example"], r.get("group"))
            table.setdefault(r["metric"], {}).setdefault(r["method"], {})[key] = float(r["value"])
        out = []
        for metric, by_method in table.items():
            methods = list(by_method)
            for i, a in enumerate(methods):
                for b in methods[i + 1 :]:
                    common = [k for k in by_method[a] if k in by_method[b]]
                    x = [by_method[a][k] for k in common]
                    y = [by_method[b][k] for k in common]
                    n = int(np.sum(np.isfinite(x) & np.isfinite(y))) if common else 0
                    p = paired_test(x, y, test=test, seed=seed) if n else float("nan")
                    out.append({"metric": metric, "a": a, "b": b, "p_value": p, "n": n})
        return out

    def to_json(self, **dump: Any) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "summary": self.summary(),
                "tests": self.tests(),
                "agreement": self.agreement,
            },
            default=float,
            **dump,
        )


def evaluate(
    explanations: Sequence[Explanation],
    metrics: Sequence[str] = DEFAULT_METRICS,
    classifier: Any = None,
    rationales: Sequence[Sequence[int] | None] | Mapping[str, Sequence[int]] | None = None,
    *,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    example_ids: Sequence[Any] | None = None,
    groups: Sequence[str | None] | None = None,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    agreement: bool = True,
) -> EvaluationResult:
    """Evaluate explanations with registered metrics (see :data:`explainlm.evaluation.METRICS`).

    ``classifier``: the model (a name or a :class:`~explainlm.models.Classifier`) for metrics that
    query it (faithfulness, stability); the target is the probability of each explanation's label.
    ``rationales``: one word-level 0/1 list per explanation (or ``None``), or a ``{text: flags}``
    mapping, for plausibility metrics. ``example_ids`` (one per explanation) pair the methods of
    an example for the paired tests (default: the index of the text). ``groups`` tags rows (e.g.
    annotator groups).
    """
    exps = list(explanations)
    names = list(metrics)
    params = dict(metric_params or {})
    unknown = set(params) - set(names)
    if unknown:
        raise UserError(f"parameters for metrics not requested: {', '.join(sorted(unknown))}")
    runners = [get_metric(m, **params.get(m, {})) for m in names]
    needs_model = any("model" in r.needs for r in runners)
    needs_rationale = any("rationale" in r.needs for r in runners)
    if rationales is None and needs_rationale:
        raise UserError("plausibility metrics need rationales=")
    rats = _rationales(exps, rationales)
    engine = None
    items: list[Item | None] = [None] * len(exps)
    if needs_model and exps:
        if classifier is None:
            raise UserError("faithfulness and stability metrics need the model: pass classifier=")
        from explainlm.models import Classifier, load_model

        clf = load_model(classifier) if isinstance(classifier, str) else classifier
        if not isinstance(clf, Classifier):
            raise UserError("evaluate() needs a classifier")
        engine = Engine(clf, ClassTarget("prob"), max_batch_tokens=max_batch_tokens)
        items = list(prepare_items(engine, [e.text for e in exps], [e.label for e in exps]))
    texts_index: dict[str, int] = {}
    ids = (
        list(example_ids)
        if example_ids is not None
        else [texts_index.setdefault(e.text, len(texts_index)) for e in exps]
    )
    if len(ids) != len(exps):
        raise UserError("example_ids needs one id per explanation")
    cases = [
        Case(e, feature_scores(e, it), it, None if r is None else np.asarray(r, dtype=int))
        for e, it, r in zip(exps, items, rats, strict=True)
    ]
    result = EvaluationResult()
    for name, runner in zip(names, runners, strict=True):
        result.higher_is_better[name] = runner.higher_is_better
        values = runner.compute(engine, cases)
        for i, (e, v) in enumerate(zip(exps, values, strict=True)):
            row = {
                "example": ids[i],
                "text": e.text,
                "method": e.method,
                "metric": name,
                "group": None if groups is None else groups[i],
                **v,
            }
            result.rows.append(row)
    if agreement:
        result.agreement = method_agreement(exps)
    return result


def _rationales(
    exps: Sequence[Explanation],
    rationales: Sequence[Sequence[int] | None] | Mapping[str, Sequence[int]] | None,
) -> list[Sequence[int] | None]:
    if rationales is None:
        return [None] * len(exps)
    if isinstance(rationales, Mapping):
        return [rationales.get(e.text) for e in exps]
    rats = list(rationales)
    if len(rats) != len(exps):
        raise UserError(f"{len(rats)} rationales for {len(exps)} explanations")
    return rats
