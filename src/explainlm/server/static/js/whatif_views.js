// Rendering for the What-if page: predictions with their change, the clickable words coloured by
// the trusted explanation, side-by-side diffs, and the counterfactual and anchor results.
import { el, fmt, heatColor, hoverValue, probs } from "./dom.js";

/** A prediction card; with `before`, each label's probability change. */
export function predictionCard(title, pred, id, before = null) {
  const card = el("div", { class: "card prediction-card", id }, el("h3", {}, title), el("div", {}, "predicted ", el("b", { class: "predicted" }, pred.label)), probs(pred.probs));
  if (before) {
    const changes = Object.keys(pred.probs).map((lab) => {
      const d = pred.probs[lab] - before.probs[lab];
      return el("span", { class: `delta ${d > 0 ? "up" : d < 0 ? "down" : ""}`, "data-label": lab }, `${lab} ${fmt(d)}`);
    });
    card.append(el("div", { class: "deltas" }, "change: ", changes));
    if (pred.label !== before.label) card.append(el("div", { class: "flipped" }, `the prediction changed: ${before.label} → ${pred.label}`));
  }
  return card;
}

/** The explanation's score of each word, when its units are the page's words (else null). */
export function wordScores(words, exp) {
  if (!exp || exp.granularity !== "word" || exp.units.length !== words.length) return null;
  if (exp.units.some((u, i) => u !== words[i].word)) return null;
  return exp.scores.map((s) => (s === null ? 0 : s));
}

/** The text as clickable words, coloured by the explanation; edited words marked. */
export function wordsView(words, exp, edits, onPick) {
  const scores = wordScores(words, exp);
  const scale = scores ? Math.max(0, ...scores.map(Math.abs)) : 0;
  const strength = exp && exp.verdict ? exp.verdict.color_strength : 1;
  const box = el("div", { class: "heat words", id: "whatif-words" });
  for (const w of words) {
    const edited = edits.has(w.index);
    const span = el("span", { class: `word${w.editable ? " editable" : ""}${edited ? (edits.get(w.index) ? " replaced" : " removed") : ""}`, "data-index": w.index });
    span.textContent = edited && edits.get(w.index) ? edits.get(w.index) : w.word;
    if (scores) span.style.background = heatColor(scores[w.index], scale, strength);
    const score = scores ? `: ${fmt(scores[w.index], 4)}` : "";
    hoverValue(span, edited ? `${w.word} → ${edits.get(w.index) || "(removed)"}` : `${w.word}${score}${w.editable ? " · click to edit" : ""}`);
    if (w.editable) {
      span.tabIndex = 0; // keyboard: Tab to a word, Enter to edit it
      span.setAttribute("role", "button");
      span.addEventListener("click", () => onPick(w, span));
      span.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          onPick(w, span);
        }
      });
    }
    box.append(span, " ");
  }
  return box;
}

function side(title, parts) {
  return el("div", { class: "card diff-side" }, el("h3", {}, title), el("div", { class: "diff-text" }, parts));
}

/** Side by side: the original with removed/replaced words struck, the edited text with new ones marked. */
export function diffView(diff, id = "whatif-diff") {
  const left = [];
  const right = [];
  const words = (list, cls) => list.map((w) => (cls ? el(cls, {}, w) : w)).flatMap((n) => [n, " "]);
  for (const op of diff) {
    left.push(...words(op.a, op.op === "equal" ? null : "del"));
    right.push(...words(op.b, op.op === "equal" ? null : "ins"));
  }
  return el("div", { class: "compare diff", id }, side("original", left), side("edited", right));
}

/** A word-level diff from edits of the original's words (index → replacement, "" removes). */
export function diffOfEdits(words, edits) {
  const ops = [];
  for (const w of words) {
    const e = edits.find((x) => x.index === w.index);
    if (!e) ops.push({ op: "equal", a: [w.word], b: [w.word] });
    else ops.push({ op: e.replacement ? "replace" : "delete", a: [w.word], b: e.replacement ? [e.replacement] : [] });
  }
  return ops;
}

/** The counterfactuals of one text: each with its label, probability, edits and a diff. */
export function counterfactualView(res, words, onApply) {
  const box = el("div", { id: "whatif-cf", class: "search-result" });
  if (res.skipped) return box.append(el("div", { class: "muted" }, `not searched: ${res.skipped}`)), box;
  const goal = res.goal || {};
  box.append(el("div", { class: "muted" }, `goal: ${goal.objective || ""}${goal.target ? ` (target ${goal.target})` : ""} · ${res.queries} model queries`));
  if (!res.success) {
    box.append(el("div", { class: "warning", id: "whatif-cf-none" }, `No counterfactual found within ${res.queries} queries: the prediction held against every searched edit.`));
    return box;
  }
  res.counterfactuals.forEach((c, i) => {
    const edits = c.edits.map((e) => ({ index: e.index, replacement: e.replacement }));
    const p = c.probs[c.label];
    const quality = [c.perplexity ? `perplexity ${c.perplexity.toFixed(1)}` : "", c.similarity ? `similarity ${c.similarity.toFixed(2)}` : ""].filter(Boolean).join(" · ");
    box.append(
      el(
        "div",
        { class: "card counterfactual", "data-label": c.label, "data-text": c.text },
        el("h3", {}, `#${i + 1}: ${res.label} → `, el("b", { class: "cf-label" }, c.label), ` (p = ${p.toFixed(3)}) · ${c.n_edits} edit${c.n_edits === 1 ? "" : "s"}`),
        el("div", { class: "cf-text" }, c.text),
        quality ? el("div", { class: "muted" }, quality) : null,
        diffView(diffOfEdits(words, edits), `whatif-cf-diff-${i}`),
        el("button", { type: "button", class: "secondary cf-apply", onclick: () => onApply(edits) }, "Apply to the text above"),
      ),
    );
  });
  return box;
}

/** An anchor: the rule, its precision with confidence interval, coverage, and its words marked. */
export function anchorView(r, words) {
  const box = el("div", { id: "whatif-anchor", class: "search-result" });
  if (r.skipped) return box.append(el("div", { class: "muted" }, `not searched: ${r.skipped}`)), box;
  const keep = new Set(r.indices);
  const text = el("div", { class: "heat" }, words.flatMap((w) => [el("span", { class: keep.has(w.index) ? "anchor-word" : "" }, w.word), " "]));
  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
  box.append(
    el("div", { class: "rule" }, el("b", { id: "whatif-anchor-rule" }, r.rule)),
    text,
    el(
      "div",
      { class: "metrics" },
      el("span", {}, "precision ", el("b", {}, pct(r.precision)), ` [${pct(r.precision_low)}, ${pct(r.precision_high)}] at ${Math.round(100 * r.confidence)}% confidence`),
      el("span", {}, "coverage ", el("b", {}, pct(r.coverage))),
      el("span", { class: `verdict ${r.meets_threshold ? "passes" : "fails"}` }, r.meets_threshold ? "meets the precision threshold" : "below the precision threshold"),
    ),
    el("div", { class: "muted" }, `${r.n_samples} perturbed texts sampled, ${r.queries} model queries`),
  );
  const examples = (title, list) => (list && list.length ? el("div", { class: "examples" }, el("div", { class: "muted" }, title), el("ul", {}, list.slice(0, 3).map((t) => el("li", {}, t)))) : null);
  box.append(examples("perturbations that keep the prediction", r.examples_kept), examples("perturbations that change it", r.examples_changed));
  return box;
}
