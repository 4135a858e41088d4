"""Automatic contrast sets (Gardner et al. 2020): evaluate a classifier on minimally edited texts.

Gardner et al. have experts edit test examples minimally so that the gold label changes, and report
how much accuracy drops from the original test set to these *contrast sets*, plus *contrast
consistency* (the share of examples whose original and every edited version are all right). Here the
edits are generated: the counterfactuals found against an *editor* model, each assumed to carry the
label the editor was moved to. That assumption is the price of automation: an edit can flip the
editor without changing the true label (an adversarial edit), so a human check of a sample is
advised. Evaluating the editor itself on its own counterfactuals is trivially 100% correct; evaluate
*other* models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from explainlm.errors import UserError
from explainlm.whatif.counterfactuals import CounterfactualResult
from explainlm.whatif.quality import ci


def gold_labels(
    values: Sequence[Any], labels: Sequence[str], names: Sequence[str] | None = None
) -> list[str]:
    """Gold values as label names: names already (any case), or indices into ``names``/``labels``.

    >>> gold_labels(["1", "0"], ["negative", "positive"])
    ['positive', 'negative']
    """
    lowered = {lab.lower(): lab for lab in labels}
    out = []
    for v in values:
        s = str(v).strip()
        if s.lower() in lowered:
            out.append(lowered[s.lower()])
            continue
        table = list(names or labels)
        if s.isdigit() and int(s) < len(table) and table[int(s)].lower() in lowered:
            out.append(lowered[table[int(s)].lower()])
            continue
        raise UserError(
            f"gold label {s!r} is neither one of the model's labels ({', '.join(labels)}) "
            "nor an index into them"
        )
    return out


def contrast_set(
    results: Sequence[CounterfactualResult], gold: Sequence[str]
) -> list[dict[str, Any]]:
    """The contrast examples: ``{"index", "text", "label"}`` per counterfactual (label = the one the
    editor moved to; texts whose original gold label is not the editor's prediction are left out, as
    their edits went *towards* the gold label)."""
    out = []
    for i, (r, g) in enumerate(zip(results, gold, strict=True)):
        if r.label != g:
            continue
        for c in r.counterfactuals:
            out.append({"index": i, "text": c.text, "label": c.label, "original": r.text})
    return out


def evaluate_contrast_set(
    oracle: Any,
    results: Sequence[CounterfactualResult],
    gold: Sequence[str],
    *,
    editor: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of ``oracle``'s classifier on the originals and on the contrast set, with CIs.

    Only originals with at least one contrast example count (paired comparison): ``drop`` is the
    mean over them of (correct on the original − share correct on its contrast examples).
    ``originals`` and ``examples`` list every text with its gold/assumed label and the evaluated
    model's prediction (to read the mistakes, or re-check the numbers).
    """
    examples = contrast_set(results, gold)
    if not examples:
        raise UserError(
            "no contrast examples: no counterfactual was found for a correctly edited text"
        )
    labels = oracle.labels
    idx = sorted({e["index"] for e in examples})
    orig_probs = oracle.probs([results[i].text for i in idx])
    cf_probs = oracle.probs([e["text"] for e in examples])
    orig_pred = {i: labels[int(np.argmax(p))] for i, p in zip(idx, orig_probs, strict=True)}
    orig_ok = {i: orig_pred[i] == gold[i] for i in idx}
    per_text: dict[int, list[bool]] = {i: [] for i in idx}
    cf_pred = [labels[int(np.argmax(p))] for p in cf_probs]
    for e, pred in zip(examples, cf_pred, strict=True):
        per_text[e["index"]].append(pred == e["label"])
    a = [float(orig_ok[i]) for i in idx]
    c = [float(np.mean(per_text[i])) for i in idx]
    consistent = [float(orig_ok[i] and all(per_text[i])) for i in idx]
    name = getattr(oracle.classifier, "name", "model")
    notes = []
    if editor is not None and editor == name:
        notes.append("evaluated on its own counterfactuals: contrast accuracy is 1 by construction")
    return {
        "model": name,
        "editor": editor,
        "n_originals": len(idx),
        "n_contrast": len(examples),
        "original_accuracy": ci(a, seed=seed),
        "contrast_accuracy": ci(c, seed=seed),
        "drop": ci([x - y for x, y in zip(a, c, strict=True)], seed=seed),
        "consistency": ci(consistent, seed=seed),
        "notes": notes,
        "originals": [
            {"index": i, "text": results[i].text, "label": gold[i], "predicted": orig_pred[i]}
            for i in idx
        ],
        "examples": [
            {"index": e["index"], "text": e["text"], "label": e["label"], "predicted": pred}
            for e, pred in zip(examples, cf_pred, strict=True)
        ],
    }
