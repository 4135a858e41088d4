// The What-if page: a text's prediction and its trusted explanation (auto, with its faithfulness
// verdict); click a word to remove or replace it and see the new prediction at once (a debounced
// fast call); find a counterfactual or an anchor (background jobs with progress and cancel).
import { api, runWork } from "./api.js";
import { clear, el, inlineError, legend, verdictLine } from "./dom.js";
import { progressBox } from "./explain.js";
import { anchorView, counterfactualView, diffView, predictionCard, wordsView } from "./whatif_views.js";

const DEBOUNCE_MS = 250;
const SOURCES = { llm: "proposed by the language model", embedding: "nearest words in embedding space", delete: "remove the word" };

const number = (input) => (input.value.trim() && Number.isFinite(Number(input.value)) ? Number(input.value) : input.value);

/** The searches' options (under "search options"); llm candidates and fluency need a causal LM. */
function searchOptions(lms) {
  const sources = Object.keys(SOURCES).map((s) => el("input", { type: "checkbox", name: "whatif-source", value: s, checked: s !== "llm" || lms.length > 0, disabled: s === "llm" && !lms.length }));
  const lm = el("select", { id: "whatif-lm" }, lms.map((m) => el("option", { value: m }, m)));
  const quality = el("input", { type: "checkbox", id: "whatif-quality", checked: lms.length > 0, disabled: !lms.length });
  const maxEdits = el("input", { id: "whatif-max-edits", value: "4", size: 3, inputmode: "numeric" });
  const budget = el("input", { id: "whatif-budget", value: "400", size: 5, inputmode: "numeric" });
  const threshold = el("input", { id: "whatif-threshold", value: "0.95", size: 5, inputmode: "decimal" });
  const node = el(
    "details",
    { class: "options", id: "whatif-options" },
    el("summary", {}, "search options"),
    el(
      "div",
      { class: "row" },
      el("fieldset", {}, el("legend", {}, "replacement candidates"), sources.map((b) => el("label", { class: "check", title: SOURCES[b.value] }, b, b.value))),
      lms.length ? el("label", {}, "language model", lm) : el("span", { class: "muted" }, "no causal LM on this server: llm candidates and fluency are off"),
      el("label", { class: "check", title: "score each counterfactual's fluency (perplexity) and similarity" }, quality, "fluency"),
      el("label", {}, "max edits", maxEdits),
      el("label", {}, "query budget", budget),
      el("label", { title: "the precision an anchor must reach" }, "anchor precision", threshold),
    ),
  );
  return {
    node,
    counterfactual: () => ({
      sources: sources.filter((b) => b.checked).map((b) => b.value),
      quality: quality.checked,
      ...(lms.length ? { lm: lm.value } : {}),
      max_edits: number(maxEdits),
      max_queries: number(budget),
      n: 3,
    }),
    anchor: () => ({ threshold: number(threshold) }),
  };
}

/** The editor of one word: remove it, type a replacement (live), restore it. */
function wordEditor(onEdit) {
  let index = null;
  const word = el("b", {});
  const replace = el("input", { id: "whatif-replace", placeholder: "replace with…", size: 16 });
  const button = (id, label, fn) => el("button", { type: "button", id, class: "secondary", onclick: fn }, label);
  const node = el(
    "div",
    { class: "editor", id: "whatif-editor", hidden: true },
    word,
    button("whatif-remove", "Remove", () => onEdit(index, "")),
    replace,
    button("whatif-restore", "Restore", () => onEdit(index, null)),
    button("whatif-close", "Close", () => (node.hidden = true)),
  );
  replace.addEventListener("input", () => replace.value.trim() && onEdit(index, replace.value.trim()));
  replace.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") node.hidden = true;
  });
  const open = (w, current) => {
    index = w.index;
    word.textContent = `“${w.word}”`;
    replace.value = current || "";
    node.hidden = false;
    replace.focus();
  };
  return { node, open };
}

/** One text's session: its words, prediction, explanation and edits, and the views they fill. */
class Session {
  constructor(view, error) {
    Object.assign(this, { view, error, words: [], before: null, exp: null, edits: new Map(), seq: 0, timer: null, body: {} });
    this.editor = wordEditor((index, replacement) => this.setEdit(index, replacement));
  }

  renderWords() {
    const fresh = wordsView(this.words, this.exp, this.edits, (w) => this.editor.open(w, this.edits.get(w.index)));
    const old = this.view.explanation.querySelector("#whatif-words");
    if (old) old.replaceWith(fresh);
    else this.view.explanation.append(fresh);
  }

  setEdit(index, replacement) {
    if (index === null) return;
    if (replacement === null) this.edits.delete(index);
    else this.edits.set(index, replacement);
    this.renderWords();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.predictEdited(), DEBOUNCE_MS); // one call for a burst of clicks or keys
  }

  applyEdits(edits) {
    this.edits = new Map(edits.map((e) => [e.index, e.replacement]));
    this.editor.node.hidden = true;
    this.renderWords();
    this.predictEdited();
    this.view.explanation.scrollIntoView({ block: "start" });
  }

  async predictEdited() {
    const seq = ++this.seq;
    const { predictions, diffBox } = this.view;
    if (!this.edits.size) {
      predictions.querySelector("#whatif-edited")?.remove();
      clear(diffBox);
      return;
    }
    const edits = [...this.edits].map(([index, replacement]) => ({ index, replacement }));
    try {
      const d = await api("/api/whatif/edit", { method: "POST", body: { ...this.body, edits } });
      if (seq !== this.seq) return; // a newer edit is on its way
      predictions.querySelector("#whatif-edited")?.remove();
      predictions.append(predictionCard("edited", d.after, "whatif-edited", d.before));
      clear(diffBox).append(diffView(d.diff));
      this.error.show("");
    } catch (err) {
      if (seq === this.seq) this.error.show(err.message);
    }
  }

  /** Ends this session: its pending and in-flight edit predictions are dropped. */
  close() {
    clearTimeout(this.timer);
    this.seq += 1;
  }

  /** The prediction at once (one fast call, which also gives the words), then the explanation. */
  async start(progress, shown) {
    const first = await api("/api/whatif/edit", { method: "POST", body: { ...this.body, edited_text: this.body.text } });
    Object.assign(this, { words: first.words, before: first.before });
    const { predictions, explanation, diffBox } = this.view;
    clear(predictions).append(predictionCard("original", first.before, "whatif-original"));
    explanation.className = "card";
    clear(explanation).append(el("h3", {}, "Why"), el("div", { class: "muted" }, "explaining…"));
    this.renderWords();
    clear(diffBox);
    shown();
    const body = { ...this.body, methods: ["auto"], granularity: "word", summary: true, async: true };
    if (this.body.labels) body.task = "zero_shot";
    this.showExplanation(await runWork("/api/explain", body, progress));
  }

  showExplanation(doc) {
    const e = (this.exp = doc.explanations[0]);
    const { explanation } = this.view;
    explanation.className = `card ${e.verdict ? e.verdict.status : ""}`; // "fails": faint words
    clear(explanation).append(
      el("h3", {}, `Why: ${e.auto ? `auto → ${e.auto.chosen}` : e.method}`),
      verdictLine(e),
      e.summary ? el("div", { class: "summary" }, e.summary) : null,
      e.auto ? el("div", { class: "why" }, e.auto.reason) : null,
    );
    this.renderWords();
    const reset = el("button", { type: "button", id: "whatif-reset", class: "secondary", onclick: () => this.applyEdits([]) }, "Reset edits");
    explanation.append(this.editor.node, legend(), el("div", { class: "actions" }, el("span", { class: "muted" }, "Click a word to remove or replace it."), reset));
  }
}

function searchBox(lms, getSession, error) {
  const options = searchOptions(lms);
  const findCf = el("button", { id: "whatif-find-cf", type: "button" }, "Find a counterfactual");
  const findAnchor = el("button", { id: "whatif-find-anchor", type: "button", class: "secondary" }, "Find an anchor");
  const status = el("div", { id: "whatif-search-status" });
  const out = el("div", { id: "whatif-search-result" });
  const search = async (path, extra, render) => {
    const s = getSession();
    error.show("");
    findCf.disabled = findAnchor.disabled = true;
    const prog = progressBox();
    clear(status).append(prog.box);
    try {
      const doc = await runWork(path, { ...s.body, ...extra, async: true }, prog.update);
      clear(out).append(render(doc.results[0], s));
    } catch (err) {
      error.show(err.message);
    } finally {
      clear(status);
      findCf.disabled = findAnchor.disabled = false;
    }
  };
  findCf.addEventListener("click", () => search("/api/whatif/counterfactual", options.counterfactual(), (r, s) => counterfactualView(r, s.words, (edits) => s.applyEdits(edits))));
  findAnchor.addEventListener("click", () => search("/api/whatif/anchor", options.anchor(), (r, s) => anchorView(r, s.words)));
  return { nodes: [el("div", { class: "actions" }, findCf, findAnchor), options.node, status, out], out };
}

export const whatifPage = {
  build(root, { models, notice }) {
    const classifierFirst = (m) => (m.kind === "sequence_classifier" ? 0 : 1);
    const ordered = [...models.models].sort((a, b) => classifierFirst(a) - classifierFirst(b));
    const lms = models.models.filter((m) => m.kind === "causal_lm").map((m) => m.name);
    const text = el("textarea", { id: "whatif-text", placeholder: "Type or paste a text…" }, "The film was dull, but the actors were wonderful and funny.");
    const model = el("select", { id: "whatif-model" }, ordered.map((m) => el("option", { value: m.name }, m.name)));
    const labels = el("input", { id: "whatif-labels", placeholder: "negative,positive", size: 22 });
    const labelsBox = el("label", { title: "zero-shot labels of a language model" }, "labels (zero-shot)", labels);
    const syncLabels = () => (labelsBox.hidden = (models.models.find((m) => m.name === model.value) || {}).kind !== "causal_lm");
    model.addEventListener("change", syncLabels);
    syncLabels();
    const button = el("button", { id: "whatif-run", type: "submit" }, "Predict & explain");
    const error = inlineError("whatif-error");
    const status = el("div", { id: "whatif-status" });
    const view = { predictions: el("div", { class: "compare", id: "whatif-predictions" }), explanation: el("div", { class: "card", id: "whatif-explanation" }), diffBox: el("div", { id: "whatif-diff-box" }) };
    let session = new Session(view, error);
    const searches = searchBox(lms, () => session, error);
    const result = el("div", { id: "whatif-result", hidden: true }, view.predictions, view.explanation, view.diffBox, searches.nodes);
    const form = el("form", { class: "panel", id: "whatif-form" }, el("label", {}, "text", text), el("div", { class: "row" }, el("label", {}, "model", model), labelsBox, button), error.box);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      error.show("");
      session.close(); // answers to the previous text's edits are dropped
      session = new Session(view, error);
      const chosenLabels = labelsBox.hidden ? null : labels.value.trim() || null;
      session.body = { text: text.value, model: model.value, ...(chosenLabels ? { labels: chosenLabels } : {}) };
      button.disabled = true;
      const prog = progressBox();
      clear(status).append(prog.box);
      try {
        await session.start(prog.update, () => {
          clear(searches.out);
          result.hidden = false;
        });
      } catch (err) {
        error.show(err.message);
      } finally {
        clear(status);
        button.disabled = false;
      }
    });
    root.append(el("h2", {}, "What if the text were different?"), form, status, result);
  },
};
