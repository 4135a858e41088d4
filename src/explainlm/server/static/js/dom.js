// DOM building without innerHTML: every piece of text goes in through textContent.

/** el("div", {class: "x", title: "t"}, child, "text", ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export const fmt = (v, digits = 3) =>
  v === null || v === undefined || Number.isNaN(v) ? "–" : (v >= 0 ? "+" : "") + v.toFixed(digits);

/**
 * Red pushes towards the target, blue against; alpha by |score| / scale, times the strength the
 * faithfulness check measured (verdict.color_strength), so tiny effects look faint.
 */
export function heatColor(score, scale, strength = 1) {
  const a = scale > 0 ? Math.min(Math.abs(score) / scale, 1) * strength : 0;
  const rgb = score > 0 ? "220,38,38" : "37,99,235";
  return `rgba(${rgb},${(a * 0.85).toFixed(2)})`;
}

const tip = el("div", { class: "tip", hidden: true });
document.addEventListener("DOMContentLoaded", () => document.body.append(tip));

/** A hover tooltip (besides the native title) with the exact value. */
export function hoverValue(node, text) {
  node.title = text;
  node.dataset.value = text;
  node.addEventListener("mouseenter", () => {
    tip.textContent = text;
    tip.hidden = false;
  });
  node.addEventListener("mousemove", (ev) => {
    tip.style.left = `${ev.clientX + 12}px`;
    tip.style.top = `${ev.clientY + 14}px`;
  });
  node.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  return node;
}

/** One explanation's units as coloured spans. */
export function heatmap(exp) {
  const scores = exp.scores.map((s) => (s === null ? 0 : s));
  const scale = Math.max(0, ...scores.map(Math.abs));
  const strength = exp.verdict ? exp.verdict.color_strength : 1;
  const box = el("div", { class: "heat" });
  exp.units.forEach((unit, i) => {
    const span = el("span", { class: "unit", style: `background:${heatColor(scores[i], scale, strength)}` });
    span.textContent = unit;
    hoverValue(span, `${unit.trim() || unit}: ${fmt(scores[i], 4)}`);
    box.append(span, " ");
  });
  return box;
}

/** One-line explanations of the terms the views show (the same as the reports'). */
export const GLOSSARY = {
  prob: "the model's probability of the explained label (0–1)",
  comprehensiveness: "how much the prediction drops when the method's top 10/20/50% of words are removed (higher = the method found what matters)",
  sufficiency: "how much the prediction drops when only those top words are kept (lower = they suffice)",
  random: "the same drop for words picked at random: a faithful method must beat it",
  "δ": "integrated gradients' completeness gap: Σ scores − (f(text) − f(baseline)); near 0 is good",
  token_logprob: "log-probability of each generated token (0 = certain; −2.3 = 10%)",
  token_prob: "probability of each generated token (0–1)",
  sequence_logprob: "log-probability of the whole continuation (sum over its tokens)",
  "log p": "log-probability of the generated token (0 = certain; −2.3 = 10%)",
  "Spearman ρ": "rank agreement of two methods' scores (1 = same order, 0 = unrelated)",
};

/** A term with its one-line explanation on hover. */
export function term(name, label = name) {
  return el("abbr", { title: GLOSSARY[name] || "" }, label);
}

/** The colour legend: of a classifier's label (explain), or of a generated token (generate). */
export function legend(kind = "explain") {
  const [up, down, hover] =
    kind === "generate"
      ? ["raises the generated token's probability", "lowers it", "hover a cell for its score"]
      : ["supports the explained label", "pushes against it", "hover a unit for its score"];
  return el(
    "div",
    { class: "legend", "data-kind": kind },
    el("span", { class: "swatch", style: "background:rgba(220,38,38,.8)" }),
    up,
    el("span", { class: "swatch", style: "background:rgba(37,99,235,.8)" }),
    `${down} · ${hover}` +
      (kind === "explain"
        ? " · full colour = removing the top words lowers p(label) by ≥ 0.25; faint = the prediction barely depends on them"
        : ""),
  );
}

const VERDICT_WORDS = {
  passes: "passes the faithfulness check",
  fails: "fails the faithfulness check: not evidence of why",
  undecided: "one unit: the check cannot judge",
  unchecked: "faithfulness not checked",
};

/** The verdict badge of an attribution's check, with its numbers (each term explained on hover). */
export function verdictLine(doc) {
  const v = doc.verdict || { status: doc.check ? "unchecked" : "unchecked" };
  const words = VERDICT_WORDS[v.status] + (v.weak ? " (weak effect)" : "");
  const line = el("div", { class: "check" }, el("span", { class: `verdict ${v.status}` }, words));
  if (doc.check) {
    line.append(
      " ",
      el(
        "span",
        { class: "muted" },
        term("comprehensiveness"), ` ${fmt(doc.check.comprehensiveness)} · `,
        term("random"), ` ${fmt(v.random_comprehensiveness)} · `,
        term("sufficiency"), ` ${fmt(doc.check.sufficiency)}`,
      ),
    );
  }
  return line;
}

/** A token as a header: whitespace made visible (a newline is ↵, a tab ⇥, a lone space ·). */
export function visible(unit) {
  const shown = String(unit).replace(/\r?\n/g, "↵").replace(/\t/g, "⇥");
  return shown.trim() ? shown : shown.replace(/ /g, "·") || "∅";
}

/** Probability bars of a prediction. */
export function probs(p) {
  const entries = Object.entries(p).sort((a, b) => b[1] - a[1]);
  return el(
    "div",
    { class: "probs" },
    entries.map(([lab, v]) =>
      el("span", {}, el("b", {}, lab), el("span", { class: "bar", style: `width:${Math.round(80 * v)}px` }), v.toFixed(3)),
    ),
  );
}

/** A generation attribution matrix: rows are generated tokens, columns their sources. */
export function matrix(a) {
  const strength = a.verdict ? a.verdict.color_strength : 1;
  const live = [];
  a.matrix.forEach((row) =>
    row.forEach((v, j) => {
      if (v !== null && a.source_kinds[j] !== "template") live.push(Math.abs(v));
    }),
  );
  const scale = Math.max(0, ...live);
  const head = el("tr", {}, el("th", {}, "generated ↓ / source →"));
  a.source_units.forEach((u, j) => {
    const kind = a.source_kinds[j];
    head.append(el("th", { class: `src ${kind === "template" ? "tmpl" : kind === "generated" ? "gen" : ""}`, title: JSON.stringify(u) }, visible(u)));
  });
  const table = el("table", { class: "matrix" }, el("thead", {}, head));
  const body = el("tbody");
  a.target_units.forEach((t, i) => {
    const tr = el("tr", {}, el("th", { class: "tgt", title: `${JSON.stringify(t)} · log p = ${fmt(a.target_logprobs[i])} (${GLOSSARY["log p"]})` }, visible(t)));
    a.matrix[i].forEach((v, j) => {
      if (v === null) {
        tr.append(el("td", { class: "none" }));
        return;
      }
      const td = el("td", { style: `background:${heatColor(v, scale, strength)}` }, v.toFixed(2));
      hoverValue(td, `${t.trim() || t} ← ${a.source_units[j].trim() || a.source_units[j]}: ${fmt(v, 4)}`);
      tr.append(td);
    });
    body.append(tr);
  });
  table.append(body);
  return el("div", { class: "matrix-wrap" }, table);
}

/** A one-line error shown inline (under a form); show(message, field) also marks the field named. */
export function inlineError(id) {
  const box = el("div", { id, class: "form-error", role: "alert", hidden: true });
  let marked = null;
  const show = (message, field = null) => {
    box.textContent = message || "";
    box.hidden = !message;
    if (marked) marked.classList.remove("invalid");
    marked = field;
    if (field) field.classList.add("invalid");
  };
  return { box, show };
}

/** "0.512 [0.430, 0.601]": a value and its confidence interval ("–" where there is none). */
export function ciText(value, ci, digits = 3) {
  const num = (v) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
  if (!ci || ci.length < 2 || ci[0] === null || ci[0] === undefined) return num(value);
  return `${num(value)} [${num(ci[0])}, ${num(ci[1])}]`;
}

/** A small bar for a value in [lo, hi] with its confidence interval as a whisker. */
export function ciBar(value, ci, lo = 0, hi = 1) {
  const x = (v) => `${(100 * Math.min(Math.max((v - lo) / (hi - lo || 1), 0), 1)).toFixed(1)}%`;
  const bar = el("span", { class: "cibar", title: ciText(value, ci) });
  if (value !== null && value !== undefined) {
    const zero = lo < 0 && hi > 0 ? 0 : lo;
    const [a, b] = [Math.min(zero, value), Math.max(zero, value)];
    bar.append(el("span", { class: "fill", style: `left:${x(a)};width:calc(${x(b)} - ${x(a)})` }));
  }
  if (ci && ci[0] !== null && ci[0] !== undefined && ci[1] !== null) {
    bar.append(el("span", { class: "whisker", style: `left:${x(ci[0])};width:calc(${x(ci[1])} - ${x(ci[0])})` }));
  }
  return bar;
}

/** A table from rows of cells (strings or nodes); the first row is the header. */
export function table(head, rows, attrs = {}) {
  return el(
    "table",
    { class: "runs", ...attrs },
    el("tr", {}, head.map((h) => el("th", {}, h))),
    rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))),
  );
}
