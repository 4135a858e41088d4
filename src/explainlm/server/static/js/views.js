// Rendering of the API's documents: explanations (with faithfulness) and generation matrices.
import { download } from "./api.js";
import { el, fmt, heatmap, legend, matrix, probs, term, verdictLine } from "./dom.js";

/** "auto → context_cite" for an attribution auto chose, else the method. */
const methodName = (d) => (d.auto ? `auto → ${d.auto.chosen}` : d.method);

/** auto's reason and any warning. */
function whyLines(d) {
  return [
    d.auto ? el("div", { class: "why" }, d.auto.reason) : null,
    ...(d.warnings || []).filter((w) => !d.auto || !d.auto.reason.includes(w)).map((w) => el("div", { class: "warning" }, w)),
  ];
}

/** Group explanation indices by text, keeping order. */
function byText(exps) {
  const groups = new Map();
  exps.forEach((e, i) => {
    if (!groups.has(e.text)) groups.set(e.text, []);
    groups.get(e.text).push(i);
  });
  return groups;
}

function faithLine(f) {
  if (!f) return null;
  return el(
    "div",
    { class: "metrics" },
    el("span", { title: "AOPC drop in p(label) when the top 1/5/10/20/50% units are removed (higher is better)" },
      "comprehensiveness ", el("b", { class: "comp" }, fmt(f.comprehensiveness))),
    el("span", { title: "AOPC drop in p(label) when only the top 1/5/10/20/50% units are kept (lower is better)" },
      "sufficiency ", el("b", { class: "suff" }, fmt(f.sufficiency))),
  );
}

/** One card per method, side by side, under each text's prediction. */
export function explanationsView(doc) {
  const exps = doc.explanations || [];
  const faith = new Map((doc.faithfulness || []).map((f) => [f.index, f]));
  const agree = new Map((doc.agreement || []).map((a) => [a.text, a.sentence]));
  const out = el("div", { class: "explanations" });
  for (const [text, idx] of byText(exps)) {
    const first = exps[idx[0]];
    const predicted = Object.entries(first.probs).sort((a, b) => b[1] - a[1])[0][0];
    out.append(
      el(
        "div",
        { class: "prediction" },
        el("div", { class: "text" }, text),
        el("div", {}, "predicted ", el("b", { class: "predicted" }, predicted), ` · explaining `, term(first.target.split(":")[0], first.target)),
        probs(first.probs),
        agree.get(text) ? el("div", { class: "agree muted" }, agree.get(text)) : null,
      ),
    );
    const grid = el("div", { class: "grid" });
    for (const i of idx) {
      const e = exps[i];
      grid.append(
        el(
          "div",
          { class: `card ${e.verdict ? e.verdict.status : ""}`, "data-method": e.method, "data-verdict": e.verdict ? e.verdict.status : "unchecked" },
          el("h3", {}, methodName(e)),
          verdictLine(e),
          heatmap(e),
          e.summary ? el("div", { class: "summary" }, e.summary) : null,
          whyLines(e),
          faithLine(faith.get(i)),
          e.delta !== undefined && e.delta !== null ? el("div", { class: "muted" }, "completeness ", term("δ"), ` = ${e.delta.toExponential(1)}`) : null,
        ),
      );
    }
    out.append(grid);
  }
  out.append(legend());
  return out;
}

/** Matrices of a generate document, one per method. */
export function generationView(doc) {
  const out = el("div", { class: "generation" });
  const atts = doc.attributions || [];
  if (atts.length) {
    out.append(
      el(
        "div",
        { class: "prediction" },
        el("div", { class: "text" }, doc.prompt || ""),
        el("div", {}, "continuation: ", el("b", { class: "continuation" }, atts[0].continuation ?? atts[0].target_units.join(""))),
      ),
    );
  }
  for (const a of atts) {
    out.append(
      el(
        "div",
        { class: `gen-attribution ${a.verdict ? a.verdict.status : ""}`, "data-method": a.method, "data-verdict": a.verdict ? a.verdict.status : "unchecked" },
        el("h3", {}, `${methodName(a)} · `, term(a.target)),
        verdictLine(a),
        a.summary ? el("div", { class: "summary" }, a.summary) : null,
        whyLines(a),
        matrix(a),
      ),
    );
  }
  out.append(legend("generate"));
  return out;
}

/** A benchmark's table: mean and 95% CI per method and metric, and the paired tests. */
export function benchmarkView(doc) {
  const b = doc.benchmark || {};
  const out = el("div", { class: "benchmark" }, el("div", { class: "muted" }, `${b.dataset || ""} · ${b.n ?? "?"} examples`));
  const head = el("tr", {}, ["method", "metric", "mean", "95% CI"].map((h) => el("th", {}, h)));
  const rows = (b.table || []).map((r) =>
    el("tr", {}, el("td", {}, r.method), el("td", {}, r.metric), el("td", {}, fmt(r.mean)), el("td", {}, `[${fmt(r.ci_low)}, ${fmt(r.ci_high)}]`)),
  );
  out.append(el("table", { class: "runs", id: "benchmark-table" }, head, rows));
  if ((b.tests || []).length) {
    const thead = el("tr", {}, ["metric", "a", "b", "p"].map((h) => el("th", {}, h)));
    out.append(el("table", { class: "runs" }, thead, b.tests.map((t) => el("tr", {}, el("td", {}, t.metric), el("td", {}, t.a), el("td", {}, t.b), el("td", {}, fmt(t.p_value))))));
  }
  return out;
}

/** JSON and HTML export buttons for a stored run. */
export function exportButtons(runId, onError) {
  const make = (fmtName, label) =>
    el("button", { class: "secondary", type: "button", "data-export": fmtName, onclick: () => download(runId, fmtName).catch(onError) }, label);
  return el("div", { class: "actions" }, make("json", "Export JSON"), make("html", "Export HTML report"), el("span", { class: "muted" }, `run ${runId}`));
}
