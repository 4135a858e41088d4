// An audit's report in the page: the plain-language conclusions first, then its key numbers, each
// with its confidence interval (as text and as a bar with a whisker), as the HTML report has them.
import { ciBar, ciText, el, fmt, table } from "./dom.js";

const p = (v) => (v === null || v === undefined ? "–" : v < 0.001 ? v.toExponential(1) : v.toFixed(3));
const num = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
const share = (value, ci, lo = 0, hi = 1) => el("span", { class: "ci" }, ciBar(value, ci, lo, hi), " ", ciText(value, ci));

function conclusions(lines) {
  return el("div", { class: "conclusions" }, el("h3", {}, "Conclusions"), el("ul", {}, (lines || []).map((l) => el("li", {}, l))));
}

function fairness(doc) {
  return (doc.dimensions || []).map((dim) => {
    const metrics = [...(dim.metrics || []), "accuracy"].filter((m, i, all) => all.indexOf(m) === i);
    const groups = dim.groups.map((g) => [
      g.group,
      String(g.n),
      ...metrics.map((m) => (g.metrics[m] ? share(g.metrics[m].value, g.metrics[m].ci) : "–")),
    ]);
    const comps = dim.comparisons.map((c) => [
      c.metric.replaceAll("_", " "),
      ciText(c.value, c.ci),
      p(c.p_value),
      p(c.p_adjusted),
      `${c.lowest ?? ""} < ${c.highest ?? ""}`,
      c.four_fifths_violated ? "below four-fifths" : c.significant ? "significant" : "",
    ]);
    return el(
      "div",
      { class: "audit-part", "data-dimension": dim.dimension },
      el("h3", {}, `${dim.dimension} — favourable label ${dim.label}`),
      table(["group", "n", ...metrics.map((m) => m.replaceAll("_", " "))], groups, { class: "runs groups" }),
      table(["comparison", "value [CI]", "p", "p adjusted", "lowest < highest", ""], comps, { class: "runs comparisons" }),
    );
  });
}

function gapTable(rows, key) {
  const all = rows.flatMap((r) => r.ci || []).filter((v) => v !== null);
  const m = Math.max(0.01, ...all.map(Math.abs), ...rows.map((r) => Math.abs(r.mean_gap || 0)));
  return table([key.replaceAll("_", " "), "n", "mean gap [CI]", "largest |gap|"], rows.map((r) => [r[key], String(r.n), share(r.mean_gap, r.ci, -m, m), num(r.max_abs_gap)]));
}

function counterfactual(doc) {
  const out = [
    el(
      "div",
      { class: "metrics audit-headline" },
      el("span", {}, "mean gap ", el("b", {}, ciText(doc.mean_gap, doc.mean_gap_ci, 4))),
      el("span", {}, "flip rate ", el("b", {}, ciText(doc.flip_rate, doc.flip_rate_ci))),
      el("span", {}, `p (Wilcoxon) ${p(doc.p_wilcoxon)} · p (permutation) ${p(doc.p_permutation)} · ${doc.n_pairs} pairs`),
    ),
  ];
  for (const key of ["template", "emotion", "emotion_word"]) {
    const rows = doc[`by_${key}`];
    if (rows && rows.length) out.push(el("h3", {}, `by ${key.replace("_", " ")}`), gapTable(rows, key));
  }
  if ((doc.worst_pairs || []).length) {
    out.push(el("h3", {}, "largest gaps"), table(["a", "b", "gap"], doc.worst_pairs.map((w) => [w.a, w.b, fmt(w.gap)]), { class: "runs worst" }));
  }
  const att = doc.attribution;
  if (att && att.by_side) {
    const rows = Object.entries(att.by_side).map(([side, v]) => [side, share(v.share[0], v.share.slice(1))]);
    rows.push(["uniform (word share)", share(att.uniform_share, null)]);
    out.push(el("h3", {}, "attribution mass on identity words"), table(["side", "share [CI]"], rows));
  }
  return out;
}

function lmBias(doc) {
  const out = [];
  if (doc.by_bias_type) {
    const rows = doc.by_bias_type.map((r) => [r.bias_type, String(r.n), share(r.metric, r.ci), p(r.p_value), p(r.p_adjusted)]);
    out.push(el("h3", {}, "share preferring the more stereotyping sentence (50% = none)"), table(["bias type", "n", "share [CI]", "p", "p adjusted"], rows, { class: "runs lm" }));
  }
  if (doc.by_category) {
    const rows = doc.by_category.map((r) => [r.category, r.condition, String(r.n), share(r.accuracy, r.accuracy_ci), share(r.bias_score, r.bias_score_ci, -1, 1), p(r.p_adjusted)]);
    out.push(el("h3", {}, "BBQ: accuracy and bias score (0 = unbiased, +1 = always the biased answer)"), table(["category", "context", "n", "accuracy [CI]", "bias score [CI]", "p adjusted"], rows, { class: "runs lm" }));
  }
  if (doc.by_type) {
    const rows = doc.by_type.map((r) => [r.kind, String(r.n_pairs), share(r.pro_accuracy, r.pro_ci), share(r.anti_accuracy, r.anti_ci), ciText(r.gap, r.gap_ci), p(r.p_adjusted)]);
    out.push(el("h3", {}, "WinoBias accuracy"), table(["kind", "pairs", "pro-stereotypical [CI]", "anti-stereotypical [CI]", "gap [CI]", "p adjusted"], rows, { class: "runs lm" }));
  }
  if (doc.by_group) {
    const rows = doc.by_group.map((g) => [g.group, String(g.n), ciText(g.value, g.ci)]);
    out.push(el("h3", {}, `BOLD: mean ${doc.score || "score"} by group`), table(["group", "n", "mean [CI]"], rows, { class: "runs lm" }));
  }
  return out;
}

function bios(doc) {
  const cell = (c) => (c && c.value !== undefined ? el("span", {}, share(c.value, c.ci), ` (n=${c.n ?? 0})`) : "–");
  const rows = (doc.tpr_by_occupation || []).map((r) => [r.occupation, cell(r.female), cell(r.male), ciText(r.gap, r.gap_ci), p(r.p_value), p(r.p_adjusted)]);
  const out = [el("h3", {}, "true-positive rate by occupation and gender"), table(["occupation", "female", "male", "gap [CI]", "p", "p adjusted"], rows, { class: "runs bios" })];
  if ((doc.plausibility || []).length) {
    const prow = doc.plausibility.map((r) => [r.rationale, r.gender, r.metric, String(r.n), ciText(r.mean, r.ci)]);
    out.push(el("h3", {}, "plausibility by gender"), table(["rationale", "gender", "metric", "n", "mean [CI]"], prow));
  }
  return out;
}

/** A data set's name; an uploaded file (kept as uploads/HASH-NAME) by the name it was sent with. */
function dataName(data) {
  const m = /[\\/]uploads[\\/][0-9a-f]{16}-([^\\/]+)$/.exec(data || "");
  return m ? `${m[1]} (uploaded)` : data || "";
}

const SECTIONS = { fairness, counterfactual, "lm-bias": lmBias, bios };

/** The audit document (a job's result, or GET /api/runs/{id}'s "audit"). */
export function auditView(doc) {
  const render = SECTIONS[doc.kind] || (() => []);
  const meta = [doc.model ? `model ${doc.model}` : "predictions given", dataName(doc.data || doc.benchmark), doc.correction_name || ""].filter(Boolean).join(" · ");
  const out = el("div", { class: "audit-report", "data-kind": doc.kind }, el("div", { class: "muted" }, `${doc.kind} audit · ${meta}`), conclusions(doc.conclusions), render(doc));
  for (const sub of doc.parts || []) out.append(el("h3", {}, sub.title || sub.kind || ""), (SECTIONS[sub.kind] || (() => []))(sub));
  if ((doc.notes || []).length) out.append(el("h3", {}, "Notes"), el("ul", { class: "notes" }, doc.notes.map((n) => el("li", {}, n))));
  return out;
}
