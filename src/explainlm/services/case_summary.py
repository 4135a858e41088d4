"""The opening of a case report: four plain-language answers (what the model relies on, where it
fails, whether it treats groups differently, how far to trust these explanations), each quoting
the measured numbers, and the key figures (``figures``: one row per number with its CI) that the
report's table and ``benchmarks/RESULTS.md`` both print from the stored run.

>>> pct(0.8312)
'83%'
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f" (95% CI {pct(lo)}–{pct(hi)})"


def _figure(key: str, label: str, value: Any, low: Any = None, high: Any = None) -> dict:
    return {"key": key, "label": label, "value": value, "low": low, "high": high}


def figures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's key numbers (value and 95% CI where there is one)."""
    m = doc["metrics"]
    out = [_figure("accuracy", f"accuracy (test, n={m['n']})", m["accuracy"], m["accuracy_low"],
                   m["accuracy_high"]),
           _figure("macro_f1", "macro-F1", m["macro_f1"], m["macro_f1_low"], m["macro_f1_high"])]  # fmt: skip
    out += [_figure(f"f1:{r['label']}", f"F1 {r['label']} (n={r['n']})", r["f1"], r["f1_low"],
                    r["f1_high"]) for r in m["per_class"]]  # fmt: skip
    for row in doc["faithfulness"]["table"]:
        if row["metric"] == "comprehensiveness":
            out.append(_figure(f"comprehensiveness:{row['method']}",
                               f"comprehensiveness of {row['method']}", row["mean"],
                               row["ci_low"], row["ci_high"]))  # fmt: skip
    if "llm" in doc:
        llm = doc["llm"]["llm"]
        out.append(_figure("llm_accuracy", f"zero-shot {doc['llm']['model']} accuracy "
                           f"(n={llm['n']})", llm["accuracy"], llm["accuracy_low"],
                           llm["accuracy_high"]))  # fmt: skip
    for row in (doc.get("plausibility") or {}).get("table", []):
        out.append(_figure(f"{row['metric']}:{row['method']}", f"{row['metric']} of "
                           f"{row['method']} vs human rationales", row["mean"], row["ci_low"],
                           row["ci_high"]))  # fmt: skip
    mass = (doc.get("identity_mass") or {}).get("mass")
    if mass:
        out.append(_figure("identity_mass", "attribution share on group mentions", *mass))
    if "surrogate" in doc:
        f = doc["surrogate"]["fidelity"]
        out.append(_figure("surrogate_fidelity", "depth-3 tree fidelity (held out)", f["value"],
                           f.get("low"), f.get("high")))  # fmt: skip
    for v in (doc.get("compression") or {}).get("document", {}).get("variants", []):
        agree = (v.get("predictions") or {}).get("agreement") or {}
        if agree.get("value") is not None:
            out.append(_figure(f"agreement:{v.get('spec')}", f"{v.get('spec')} agrees with the "
                               "full model", agree["value"], agree.get("ci_low"), agree.get("ci_high")))  # fmt: skip
    return out


def relies_on(doc: dict[str, Any]) -> str:
    """Words the model relies on: dataset-level importance when run, else the explained texts."""
    if "importance" in doc:
        rows = doc["importance"]["document"]["table"]
        parts = []
        for cls in doc["importance"]["document"]["classes"]:
            words = [r["feature"] for r in rows if r["class"] == cls][:3]
            if words:
                parts.append(f"{cls}: {', '.join(words)}")
        checks = doc["importance"]["document"].get("trust") or []
        caveat = "" if all(t.get("ok") for t in checks) else (
            " (but the sampled faithfulness check of these attributions did not pass: read them "
            "with caution)")  # fmt: skip
        return ("Across the test texts, the words that push the model most towards each class "
                f"are — {'; '.join(parts)}{caveat}.")  # fmt: skip
    weight: Counter[str] = Counter()
    passed = [i for i in doc["explanations"]["items"] if i["verdict"].get("status") == "passes"]
    for item in passed:
        e = item["explanation"]
        for score, word in zip(e["word_scores"], e["words"], strict=True):
            if score > 0 and any(ch.isalnum() for ch in word):  # punctuation is not "a word"
                weight[word.lower()] += score
    top = ", ".join(w for w, _ in weight.most_common(6)) or "no word stands out"
    return (
        f"In the {len(passed)} explained predictions that passed the faithfulness check, the words "
        f"that carry most of the decisions (summed attribution towards the predicted label) are: "
        f"{top}."
    )


def fails(doc: dict[str, Any]) -> str:
    m = doc["metrics"]
    worst = min(m["per_class"], key=lambda r: r["f1"])
    labels = m["labels"]
    pairs = [(m["confusion"][a][b], labels[a], labels[b]) for a in range(len(labels))
             for b in range(len(labels)) if a != b]  # fmt: skip
    n, gold, pred = max(pairs)
    text = (f"The model is right on {pct(m['accuracy'])} of {m['n']} test texts"
            f"{ci(m['accuracy_low'], m['accuracy_high'])}. It is weakest on '{worst['label']}' "
            f"(F1 {pct(worst['f1'])}{ci(worst['f1_low'], worst['f1_high'])}); the most common "
            f"mistake is calling '{gold}' '{pred}' ({n} texts).")  # fmt: skip
    if "llm" in doc:
        llm = doc["llm"]
        text += (f" A general-purpose LLM ({llm['model']}, no training) is right on "
                 f"{pct(llm['llm']['accuracy'])} of the first {llm['llm']['n']} texts, against "
                 f"{pct(llm['classifier']['accuracy'])} for the trained model "
                 f"(McNemar p = {llm['mcnemar_p']:.3g}).")  # fmt: skip
    return text


def flagged_harmless(fairness: dict[str, Any]) -> str:
    """'Harmless posts flagged as toxic' per group: false-positive rates with the audit's Wilson
    intervals (never [0%, 0%] for 0 of 12), highest first; groups the audit found too small for
    an interval are named as such."""
    dims = fairness.get("dimensions") or []
    rows, small = [], []
    for g in dims[0]["groups"] if dims else []:
        fpr = g["metrics"].get("false_positive_rate") or {}
        if fpr.get("value") is None:
            continue
        if fpr.get("ci"):
            rows.append((fpr["value"], g["group"], tuple(fpr["ci"]), int(fpr["n"])))
        else:
            small.append(g["group"])
    if not rows:
        return ""
    parts = [f"{name} {pct(v)}{ci(*band)} of {n}" for v, name, band, n in sorted(rows)[::-1]]
    text = "Harmless posts wrongly flagged as toxic, by the group a post mentions: "
    text += "; ".join(parts) + "."
    if small:
        text += f" Too few harmless posts for an interval: {', '.join(small)}."
    return text


def _moderation_groups(doc: dict[str, Any]) -> str:
    audit = doc["fairness"]["document"]
    concl = audit.get("conclusions") or []
    missing = doc["fairness"].get("not_run")
    if not concl and missing:
        return f"Posts grouped by the identity group they mention: not measured — {missing}"
    odds = [c for c in concl if "equalized odds" in c]
    text = (
        " ".join(filter(None, [flagged_harmless(audit), *(odds or concl[:1])]))
        or "The fairness audit drew no conclusion."
    )
    m = doc.get("identity_mass") or {}
    if m.get("mass"):
        text += (f" On {m['n']} posts that mention a group, the group words carry "
                 f"{pct(m['mass'][0])}{ci(m['mass'][1], m['mass'][2])} of the explanation's weight "
                 f"while being {pct(m['share'])} of the words (Wilcoxon p = {m['p_value']:.2g}).")  # fmt: skip
    return text


def groups(doc: dict[str, Any]) -> str:
    if "fairness" in doc:
        return _moderation_groups(doc)
    if "bios" in doc:
        concl = doc["bios"]["document"].get("conclusions") or []
        return ("On biographies of medical professionals (Bias in Bios): " + " ".join(concl[:3])
                if concl else "The Bias-in-Bios audit drew no conclusion.")  # fmt: skip
    return (
        "This data carries no attribute of people (gender, race, …), so group differences "
        "were not measured here."
    )


def trust(doc: dict[str, Any]) -> str:
    faith = doc["faithfulness"]
    rows = {r["method"]: r for r in faith["table"] if r["metric"] == "comprehensiveness"}
    method = faith["methods"][0]
    ours, rnd = rows.get(method), rows.get("random")
    statuses = Counter(i["verdict"].get("status") for i in doc["explanations"]["items"])
    text = ""
    if ours and rnd:
        better = ours["ci_low"] is not None and ours["ci_low"] > rnd["ci_high"]
        name = "the automatically chosen method (auto)" if method == "auto" else method
        text = (f"Removing the words {name} ranks highest lowers the model's confidence by "
                f"{ours['mean']:.2f} on average (95% CI {ours['ci_low']:.2f}–{ours['ci_high']:.2f})"
                f", against {rnd['mean']:.2f} for words picked at random (n = {faith['n']} texts): "
                + ("the explanations point at words the model really uses. " if better else
                   "not clearly better than random: treat the highlighted words with caution. "))  # fmt: skip
    text += (
        f"Of the {sum(statuses.values())} explanations shown, {statuses.get('passes', 0)} "
        f"passed their own faithfulness check and {statuses.get('fails', 0)} failed it."
    )
    return text


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the summary and the key figures to a built case document."""
    doc["summary"] = [
        {"question": "What does the model rely on?", "answer": relies_on(doc)},
        {"question": "Where does it fail?", "answer": fails(doc)},
        {"question": "Does it treat groups differently?", "answer": groups(doc)},
        {"question": "How far can these explanations be trusted?", "answer": trust(doc)},
    ]
    doc["figures"] = figures(doc)
    return doc
