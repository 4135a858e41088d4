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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from explainlm.engine import Engine, Item
from explainlm.errors import UserError
from explainlm.evaluation.base import Case, Metric
from explainlm.evaluation.stats import bootstrap_ci, paired_test
from explainlm.explanation import Explanation
from explainlm.models.batching import DEFAULT_MAX_BATCH_TOKENS
from explainlm.targets import ClassTarget

DEFAULT_METRICS = ("comprehensiveness", "sufficiency", "tau_loo")


def _registry() -> dict[str, type[Metric]]:
    from explainlm.evaluation import METRICS

    return METRICS


def get_metric(name: str, **params: Any) -> Metric:
    """Instantiate a registered metric by name with its parameters."""
    reg = _registry()
    try:
        cls = reg[name]
    except KeyError:
        raise UserError(f"unknown metric {name!r}; known: {', '.join(reg)}") from None
    return cls(**params)


def prepare_items(
    engine: Engine, texts: Sequence[str], labels: Sequence[str], *, truncation: bool = True
) -> list[Item]:
    """Engine items whose target is the engine target's value for a given label of each text."""
    items = engine.prepare(list(texts), truncation=truncation)
    out = []
    for it, lab in zip(items, labels, strict=True):
        idx = engine.classifier.label_index(lab)
        value = engine.target.value(it.scores.unsqueeze(0), torch.tensor([idx]))
        out.append(replace(it, label_idx=idx, target_value=float(value[0])))
    return out


def _feature_scores(e: Explanation, item: Item | None) -> np.ndarray:
    if e.granularity == "word":
        s = np.asarray(e.word_scores, dtype=np.float64)
        if item is not None and len(item.encoding.word_spans) != s.size:
            raise UserError(
                f"{e.method}: {s.size} word scores for {len(item.encoding.word_spans)} words of "
                f"{e.text[:40]!r} (was it explained by another model?)"
            )
        return s
    if e.token_scores is None:
        raise UserError(f"{e.method} has no token-level scores")
    special = e.token_special or [False] * len(e.token_scores)
    s = np.asarray([v for v, sp in zip(e.token_scores, special, strict=True) if not sp])
    if item is not None and len(item.encoding.text_token_positions) != s.size:
        raise UserError(
            f"{e.method}: token scores do not match the model's tokens of {e.text[:40]!r}"
        )
    return s


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
        Case(e, _feature_scores(e, it), it, None if r is None else np.asarray(r, dtype=int))
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
        from explainlm.evaluation.stability import method_agreement

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
