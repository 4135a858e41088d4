"""Classification metrics (accuracy, macro-F1, per-class report) and evaluation on a labelled file.

>>> m = classification_metrics([0, 1, 1], [0, 1, 0], ["negative", "positive"])
>>> round(m["accuracy"], 3), m["n"]
(0.667, 3)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.errors import DataFormatError


def classification_metrics(
    gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and the per-class report (sklearn ``classification_report`` dict)."""
    from sklearn.metrics import classification_report

    report = classification_report(
        list(gold),
        list(pred),
        labels=list(range(len(labels))),
        target_names=list(labels),
        output_dict=True,
        zero_division=0,
    )
    correct = sum(int(g == p) for g, p in zip(gold, pred, strict=True))
    return {
        "accuracy": correct / max(len(gold), 1),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "n": len(gold),
        "report": {k: v for k, v in report.items() if k != "accuracy"},
    }


def format_metrics(metrics: Mapping[str, Any], labels: Sequence[str], title: str = "dev") -> str:
    """A readable table of accuracy, macro-F1 and per-class precision / recall / F1."""
    width = max(12, *(len(lab) for lab in labels))
    lines = [
        f"{title}: accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
        f"(n={metrics['n']})",
        f"  {'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for name in [*labels, "macro avg"]:
        r = metrics["report"][name]
        lines.append(
            f"  {name:<{width}} {r['precision']:>9.4f} {r['recall']:>9.4f} "
            f"{r['f1-score']:>9.4f} {int(r['support']):>8}"
        )
    return "\n".join(lines)


def evaluate_classifier(
    classifier: Any,
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_map: Mapping[str, str] | None = None,
    limit: int | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class report of a loaded classifier on a labelled file.

    File label values map to the classifier's labels through ``label_map``, or else through the
    ``label_values``/``labels`` saved by :func:`train_classifier`; label names are accepted as is.
    ``max_length`` truncates texts as training did (``explainlm train --test`` passes its own).

    >>> from explainlm.models import load_model
    >>> clf = load_model("models/minilm-sst2")                              # doctest: +SKIP
    >>> evaluate_classifier(clf, "test.tsv", text_column="sentence")["accuracy"]  # doctest: +SKIP
    0.87
    """
    labels = list(classifier.labels)
    mapping = {lab: lab for lab in labels}
    meta = getattr(getattr(classifier, "wrapper", None), "meta", {}) or {}
    if label_map is None and meta.get("label_values") and meta.get("labels"):
        label_map = dict(zip(meta["label_values"], meta["labels"], strict=True))
    mapping.update({str(k): str(v) for k, v in (label_map or {}).items()})
    from explainlm.training.data import read_source

    table = read_source(path, text_column=text_column, label_column=label_column, limit=limit)
    assert table.labels is not None
    gold = []
    for value, line in zip(table.labels, table.lines, strict=True):
        name = mapping.get(value)
        if name not in labels:
            raise DataFormatError(
                table.path,
                line,
                f"label {value!r} is not one of the model's labels ({', '.join(labels)})",
            )
        gold.append(labels.index(name))
    wrapper = classifier.wrapper
    limit_before = wrapper.max_length
    if max_length is not None:  # truncate as in training, so test and dev scores are comparable
        wrapper.max_length = min(limit_before, int(max_length))
    try:
        preds = classifier.predict(table.texts)
    finally:
        wrapper.max_length = limit_before
    pred = [labels.index(p.label) for p in preds]
    return classification_metrics(gold, pred, labels)
