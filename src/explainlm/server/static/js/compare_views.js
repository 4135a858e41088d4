// A compression study's report (explainlm compare): which explanations survive, then per variant
// accuracy, agreement, speed and size, the explanation drift and the faithfulness change, each
// with its confidence interval, as the HTML report has them.
import { ciBar, ciText, el, table } from "./dom.js";

const num = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const p = (v) => (v === null || v === undefined ? "–" : v < 0.001 ? v.toExponential(1) : v.toFixed(3));
/** {value|mean, ci_low, ci_high} → "0.912 [0.85, 0.95]" with a bar. */
const ci = (d, key = "mean", lo = 0, hi = 1) =>
  d ? el("span", { class: "ci" }, ciBar(d[key], [d.ci_low, d.ci_high], lo, hi), " ", ciText(d[key], [d.ci_low, d.ci_high])) : "–";

function ranking(doc) {
  const rows = (doc.ranking || []).map((r, i) => [String(i + 1), r.method, num(r.mean_rank, 2), num(r.mean_spearman), String(r.variants ?? "")]);
  return [
    el("h3", {}, "Which explanations survive compression"),
    el("div", { class: "muted" }, "Methods ranked by mean Spearman ρ with the reference's attributions under each variant; overall by mean rank."),
    table(["#", "method", "mean rank", "mean ρ", "variants"], rows, { class: "runs ranking" }),
  ];
}

function variants(doc) {
  const rows = doc.variants.map((v) => {
    const pr = v.predictions || {};
    const speed = (v.speed || {}).batch_ratio || {};
    const info = v.info || {};
    const size = info.packed_bytes ? `${num(info.packed_bytes / 1e6, 1)} / ${num(info.reference_bytes / 1e6, 1)}` : "–";
    return [v.spec, ci(pr.accuracy, "value"), ci(pr.agreement, "value"), p(pr.mcnemar_p), pr.prob_shift ? ciText(pr.prob_shift.value, [pr.prob_shift.ci_low, pr.prob_shift.ci_high]) : "–", `${num(speed.median, 2)} [${num(speed.min, 2)}, ${num(speed.max, 2)}]`, size];
  });
  const head = ["variant", "accuracy [CI]", "agreement [CI]", "McNemar p", "|Δ p(label)| [CI]", "time ratio", "size MB"];
  const note = "agreement: share of texts where the variant predicts the reference's label; time ratio: variant ÷ reference batch time, median [min, max] over interleaved rounds; size: packed variant / reference";
  return [el("h3", {}, "Predictions, speed and size"), el("div", { class: "muted" }, note), table(head, rows, { class: "runs variants" })];
}

function drift(doc) {
  const rows = [];
  for (const v of doc.variants) {
    for (const method of doc.methods || []) {
      const d = (v.drift || {})[method];
      if (!d) {
        rows.push([v.spec, method, el("span", { class: "muted" }, (v.skipped || {})[method] || "not run"), "", "", "", ""]);
        continue;
      }
      const text = (x) => (x ? ciText(x.mean, [x.ci_low, x.ci_high]) : "–");
      rows.push([v.spec, method, ci(d.spearman, "mean", -1, 1), text(d.kendall), text(d.top_k), text(d.sign), text(d.l1)]);
    }
  }
  const head = ["variant", "method", "Spearman ρ", "Kendall τ", `top-${doc.top_k ?? "k"} agreement`, "sign agreement", "relative L1 change"];
  return [el("h3", {}, "Explanation drift"), table(head, rows, { class: "runs drift" })];
}

function faithfulness(doc) {
  const rows = [];
  for (const v of doc.variants) {
    for (const [method, per] of Object.entries(v.faithfulness || {})) {
      for (const [metric, f] of Object.entries(per)) {
        rows.push([v.spec, method, metric, ciText(f.reference.mean, [f.reference.ci_low, f.reference.ci_high]), ciText(f.variant.mean, [f.variant.ci_low, f.variant.ci_high]), ciText(f.delta.mean, [f.delta.ci_low, f.delta.ci_high]), p(f.p_value)]);
      }
    }
  }
  return [el("h3", {}, "Faithfulness on each model (paired Wilcoxon test)"), table(["variant", "method", "metric", "reference", "variant", "Δ", "p"], rows, { class: "runs faith" })];
}

/** A compare document (GET /api/compare/{id}, a compare job's result, or a run's "compare"). */
export function compareReportView(doc) {
  const ds = doc.dataset || {};
  const ref = doc.reference || {};
  const head = `reference ${doc.reference_model} · ${ds.name}${ds.split ? `:${ds.split}` : ""} (n = ${ds.n}) · explained label: ${doc.target_label}`;
  const out = el(
    "div",
    { class: "compare-report", "data-run": doc.run_id || "" },
    el("div", { class: "muted" }, head),
    ref.accuracy ? el("div", { class: "metrics" }, el("span", {}, "reference accuracy ", el("b", { class: "ref-accuracy" }, ciText(ref.accuracy.value, [ref.accuracy.ci_low, ref.accuracy.ci_high])))) : null,
  );
  if (!(doc.variants || []).length) {
    out.append(el("div", { class: "muted" }, "No variant has finished yet."));
  } else {
    out.append(...ranking(doc), ...variants(doc), ...drift(doc), ...faithfulness(doc));
  }
  if ((doc.notes || []).length) out.append(el("h3", {}, "Notes"), el("ul", { class: "notes" }, doc.notes.map((n) => el("li", {}, n))));
  return out;
}
