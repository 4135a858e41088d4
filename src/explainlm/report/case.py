"""The HTML report of a case study (:mod:`explainlm.services.case`): one self-contained page that
opens with the plain-language summary, then the key figures with CIs and the evidence, each section
naming the recorded run it comes from. No scripts; every piece of text is escaped.

>>> "<b>" in case_html({"title": "<b>", "summary": [], "figures": [], "domain": "x"})
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from explainlm.report.html import esc, page

CSS = """
.summary dt{font-weight:600;margin-top:.7rem}.summary dd{margin:.2rem 0 0 0}
.fig td.num{font-variant-numeric:tabular-nums;white-space:nowrap}.run{color:#6e6e73;font-size:.8rem}
pre.tree{background:#f6f6f8;padding:.6rem;overflow-x:auto}.pass{color:#1a7f37}.fail{color:#b42318}
.card{border:1px solid #e5e5ea;border-radius:6px;padding:.5rem .7rem;margin:.6rem 0}
"""


def num(v: Any, digits: int = 3) -> str:
    """A number for the report (the same formatting as ``benchmarks/cases_results.py``)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return esc(v)


def with_ci(value: Any, low: Any, high: Any) -> str:
    return num(value) + ("" if low is None or high is None else f" [{num(low)}, {num(high)}]")


def _run(run_id: Any) -> str:
    return f"<div class='run'>evidence: run {esc(run_id)} (explainlm runs show {esc(run_id)})</div>"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    h = "".join(f"<th>{esc(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><tr>{h}</tr>{body}</table>"


def summary_section(doc: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{esc(s['question'])}</dt><dd>{esc(s['answer'])}</dd>"
                    for s in doc.get("summary", []))  # fmt: skip
    return f"<h2>Summary</h2><dl class='summary'>{items}</dl>"


def figures_section(doc: Mapping[str, Any]) -> str:
    rows = [
        f"<tr data-key='{esc(f['key'])}'><td>{esc(f['label'])}</td><td class='num'>"
        f"{num(f['value'])}</td><td class='num'>{num(f['low'])}</td><td class='num'>"
        f"{num(f['high'])}</td></tr>"
        for f in doc.get("figures", [])
    ]
    return ("<h2>Key figures</h2><table class='fig' id='figures'><tr><th>figure</th><th>value</th>"
            f"<th>95% CI low</th><th>95% CI high</th></tr>{''.join(rows)}</table>")  # fmt: skip


def metrics_section(m: Mapping[str, Any], title: str = "How good is the model?") -> str:
    rows = [[esc(r["label"]), str(r["n"]), num(r["precision"]), num(r["recall"]),
             with_ci(r["f1"], r["f1_low"], r["f1_high"])] for r in m["per_class"]]  # fmt: skip
    labels = m["labels"]
    conf = [[f"<b>{esc(labels[a])}</b>"] + [str(c) for c in row]
            for a, row in enumerate(m["confusion"])]  # fmt: skip
    return (
        f"<h2>{esc(title)}</h2><p>Accuracy {with_ci(m['accuracy'], m['accuracy_low'], m['accuracy_high'])}"
        f" (Wilson), macro-F1 {with_ci(m['macro_f1'], m['macro_f1_low'], m['macro_f1_high'])} on "
        f"{m['n']} test texts; F1 intervals: percentile bootstrap over texts ({m['n_boot']} "
        "resamples).</p>" + _table(["class", "n", "precision", "recall", "F1 [95% CI]"], rows)
        + "<p class='muted'>Confusion matrix (rows: true class, columns: predicted)</p>"
        + _table(["true \\ predicted", *labels], conf) + _run(m.get("predict_run"))
    )  # fmt: skip


def explanations_section(ex: Mapping[str, Any], title: str) -> str:
    from explainlm.explanation import Explanation
    from explainlm.report.heatmap import explanation_html

    cards = []
    for item in ex["items"]:
        e = Explanation.from_dict(item["explanation"])
        v = item["verdict"]
        status = v.get("status", "unchecked")
        cls = "pass" if status == "passes" else "fail" if status == "fails" else ""
        right = "correct" if item.get("gold") == e.predicted else "wrong"
        head = (f"<div>true: <b>{esc(item.get('gold'))}</b> · predicted: <b>{esc(e.predicted)}"
                f"</b> ({right}) · faithfulness check: <span class='{cls}'>{esc(status)}</span>"
                "</div>")  # fmt: skip
        cards.append(f"<div class='card'>{head}{explanation_html(e)}</div>")
    note = (f"<p>Method: {esc(ex['method'])}. Red words push towards the explained label, blue "
            "words against it. Each explanation was checked: removing its top words must lower the "
            "prediction more than removing random words.</p>")  # fmt: skip
    return f"<h2>{esc(title)}</h2>{note}{''.join(cards)}{_run(ex.get('run_id'))}"


def faithfulness_table(f: Mapping[str, Any]) -> str:
    rows = [[esc(r["method"]), esc(r["metric"]), with_ci(r["mean"], r["ci_low"], r["ci_high"])]
            for r in f["table"]]  # fmt: skip
    tests = [[esc(t["metric"]), esc(t["a"]), esc(t["b"]), num(t["p_value"])] for t in f["tests"]]
    return (
        "<h2>Can the explanations be trusted?</h2><p>Comprehensiveness: how much the probability of "
        "the predicted label drops when the method's top words are removed (higher is better); "
        "sufficiency: how much it drops when only they are kept (lower is better). ERASER, DeYoung "
        f"et al. 2020; {esc(f['n'])} test texts, 95% bootstrap CIs.</p>"
        + _table(["method", "metric", "mean [95% CI]"], rows)
        + _table(["metric", "method A", "method B", "Wilcoxon p"], tests) + _run(f.get("run_id"))
    )  # fmt: skip


def importance_section(imp: Mapping[str, Any]) -> str:
    d = imp["document"]
    rows = [[esc(r["class"]), esc(r["feature"]), str(r.get("n_texts", "")),
             with_ci(r.get("mean"), r.get("mean_low"), r.get("mean_high"))] for r in d["table"]]  # fmt: skip
    trust = " ".join(t.get("text", "") for t in d.get("trust") or [])
    return ("<h2>What does the model rely on, condition by condition?</h2><p>Dataset-level importance "
            f"({esc(d.get('method'))}, pooled per predicted class; ranked by the lower CI bound). "
            f"{esc(trust)}</p>" + _table(["class", "word", "texts", "mean effect [95% CI]"], rows)
            + _run(imp.get("run_id")))  # fmt: skip


def surrogate_section(s: Mapping[str, Any]) -> str:
    f = s["fidelity"]
    return ("<h2>A decision tree a clinician can read</h2><p>A depth-3 tree trained to imitate the "
            f"model. It agrees with the model on {num(f['value'])} [{num(f.get('low'))}, "
            f"{num(f.get('high'))}] of held-out texts (always answering the most common label: "
            f"{num((s.get('trivial') or {}).get('value'))}). {esc(s.get('verdict'))}</p>"
            f"<pre class='tree'>{esc(s.get('rules'))}</pre>" + _run(s.get("run_id")))  # fmt: skip


def bios_section(b: Mapping[str, Any]) -> str:
    d = b["document"]
    concl = "".join(f"<li>{esc(c)}</li>" for c in d.get("conclusions", []))
    return ("<h2>Gender: Bias in Bios (medical occupations)</h2><p>The audit of a classifier of "
            f"medical occupations ({esc(b['model']['path'])}) on biographies of women and men.</p>"
            f"<ul>{concl}</ul>" + _run(b.get("run_id")))  # fmt: skip


def llm_section(llm: Mapping[str, Any]) -> str:
    a, c = llm["llm"], llm["classifier"]
    rows = [[esc(llm["model"]) + " (zero-shot)", with_ci(a["accuracy"], a["accuracy_low"],
             a["accuracy_high"]), with_ci(a["macro_f1"], a["macro_f1_low"], a["macro_f1_high"])],
            ["trained classifier", with_ci(c["accuracy"], c["accuracy_low"], c["accuracy_high"]),
             with_ci(c["macro_f1"], c["macro_f1_low"], c["macro_f1_high"])]]  # fmt: skip
    out = ("<h2>A general-purpose LLM, without training</h2><p>Prompt: "
           f"<code>{esc(llm['template'])}</code>. Same {a['n']} test texts; exact McNemar test "
           f"p = {num(llm['mcnemar_p'])}; the two agree on {num(llm['agreement'])}.</p>"
           + _table(["model", "accuracy [95% CI]", "macro-F1 [95% CI]"], rows)
           + _run(llm.get("predict_run")))  # fmt: skip
    if llm.get("explanations"):
        out += explanations_section(llm["explanations"], "Why the LLM decided")
    return out


def counterfactual_section(cf: Mapping[str, Any]) -> str:
    rows = []
    for r in cf["results"]:
        best = (r.get("counterfactuals") or [None])[0]
        rows.append([esc(r.get("text")), esc(r.get("label") or r.get("original_label")),
                     esc(best.get("marked") or best.get("text")) if best else "none found",
                     esc(best.get("label")) if best else "–"])  # fmt: skip
    return ("<h2>What would have to change?</h2><p>The smallest word edits found that change the "
            "model's decision (what-if counterfactuals; [[old -> new]] marks an edit, an empty new "
            "word a deletion).</p>"
            + _table(["text", "decision", "edited text", "new decision"], rows) + _run(cf.get("run_id")))  # fmt: skip


def compression_section(c: Mapping[str, Any]) -> str:
    rows = []
    for v in c["document"].get("variants", []):
        p = v.get("predictions") or {}
        drift = (v.get("drift") or {}).get("occlusion", {}).get("spearman", {})
        rows.append([esc(v.get("spec")), *(with_ci(*(p.get(m, {}).get(k) for k in
                     ("value", "ci_low", "ci_high"))) for m in ("agreement", "accuracy")),
                     with_ci(drift.get("mean"), drift.get("ci_low"), drift.get("ci_high"))])  # fmt: skip
    return ("<h2>What does compressing the model change?</h2><p>The same model quantized: share of "
            "texts with the same decision, accuracy, and rank correlation of occlusion explanations "
            "with the full model's (Spearman ρ).</p>"
            + _table(["variant", "agreement", "accuracy", "explanation ρ"], rows)
            + _run(c.get("run_id")))  # fmt: skip


def plausibility_section(p: Mapping[str, Any]) -> str:
    rows = [[esc(r["method"]), esc(r["metric"]), with_ci(r["mean"], r["ci_low"], r["ci_high"])]
            for r in p["table"]]  # fmt: skip
    return ("<h2>Do the explanations match what human moderators marked?</h2><p>Plausibility "
            "against the annotators' rationales (token F1 of the top words, AUPRC of the scores; "
            f"ERASER, DeYoung et al. 2020) on {esc(p['n'])} test posts.</p>"
            + _table(["method", "metric", "mean [95% CI]"], rows) + _run(p.get("run_id")))  # fmt: skip


def fairness_section(f: Mapping[str, Any]) -> str:
    d = f["document"]
    concl = "".join(f"<li>{esc(c)}</li>" for c in d.get("conclusions", []))
    return ("<h2>Identity groups: does the model flag some groups' posts more?</h2><p>Each post's "
            "group is the first identity group it mentions (or none); the favourable label is "
            "'toxic', so the false-positive rate is how often harmless posts are flagged.</p>"
            f"<ul>{concl}</ul>" + (f"<p>Not measured: {esc(f['not_run'])}</p>" if f.get("not_run")
                                   else _run(f.get("run_id"))))  # fmt: skip


def mass_section(m: Mapping[str, Any]) -> str:
    if not m.get("mass"):
        return f"<h2>Weight on group mentions</h2><p>Too few posts ({esc(m.get('n'))}).</p>"
    return ("<h2>Weight on group mentions</h2><p>On the " + esc(m["n"]) + " explained posts that "
            f"mention a group, the group words carry {with_ci(*m['mass'])} of the absolute "
            f"attribution ({esc(m['method'])}) while being {num(m['share'])} of the words; excess "
            f"{with_ci(*m['excess'])}, Wilcoxon p = {num(m['p_value'])}.</p>" + _run(m.get("run_id")))  # fmt: skip


SECTIONS = (
    ("plausibility", plausibility_section),
    ("fairness", fairness_section),
    ("identity_mass", mass_section),
    ("importance", importance_section),
    ("surrogate", surrogate_section),
    ("bios", bios_section),
    ("llm", llm_section),
    ("counterfactuals", counterfactual_section),
    ("compression", compression_section),
)


def case_html(doc: Mapping[str, Any]) -> str:
    """The case report as one HTML document."""
    parts = [f"<style>{CSS}</style>", summary_section(doc), figures_section(doc)]
    if "metrics" in doc:
        parts.append(metrics_section(doc["metrics"]))
    if "explanations" in doc:
        parts.append(
            explanations_section(doc["explanations"], "Why: correct and wrong predictions")
        )
    if "faithfulness" in doc:
        parts.append(faithfulness_table(doc["faithfulness"]))
    parts += [render(doc[key]) for key, render in SECTIONS if doc.get(key)]
    model = doc.get("model") or {}
    meta = {"case": doc.get("domain"), "data": doc.get("dataset"), "model": model.get("path"),
            "run": doc.get("run_id")}  # fmt: skip
    return page(str(doc.get("title", "case study")), parts, meta)
