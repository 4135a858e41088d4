// The What-if page: a text's prediction and its trusted explanation (auto, with its faithfulness
// verdict); click a word to remove or replace it and see the new prediction at once (a debounced
// fast call); find a counterfactual or an anchor (background jobs with progress and cancel).
import { api, runWork } from "./api.js";
import { clear, el, inlineError, legend, verdictLine } from "./dom.js";
import { progressBox } from "./explain.js";
import { anchorView, counterfactualView, diffView, predictionCard, wordsView } from "./whatif_views.js";

const DEBOUNCE_MS = 250;
const SOURCES = ["llm", "embedding", "delete"];

function searchOptions(lms) {
  const sources = SOURCES.map((s) => el("input", { type: "checkbox", name: "whatif-source", value: s, checked: s !== "llm" || lms.length > 0, disabled: s === "llm" && !lms.length }));
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
      el("fieldset", {}, el("legend", {}, "replacement candidates"), sources.map((b) => el("label", { class: "check", title: { llm: "proposed by the language model", embedding: "nearest words in embedding space", delete: "remove the word" }[b.value] }, b, b.value))),
      lms.length ? el("label", {}, "language model", lm) : el("span", { class: "muted" }, "no causal LM on this server: llm candidates and fluency are off"),
      el("label", { class: "check", title: "score each counterfactual's fluency (perplexity) and similarity" }, quality, "fluency"),
      el("label", {}, "max edits", maxEdits),
      el("label", {}, "query budget", budget),
      el("label", { title: "the precision an anchor must reach" }, "anchor precision", threshold),
    ),
  );
  const num = (input) => (input.value.trim() && Number.isFinite(Number(input.value)) ? Number(input.value) : input.value);
  return {
    node,
    counterfactual: () => ({
      sources: sources.filter((b) => b.checked).map((b) => b.value),
      quality: quality.checked,
      ...(lms.length ? { lm: lm.value } : {}),
      max_edits: num(maxEdits),
      max_queries: num(budget),
      n: 3,
    }),
    anchor: () => ({ threshold: num(threshold) }),
  };
}

export const whatifPage = {
  build(root, { models, notice }) {
    const ordered = [...models.models].sort((a, b) => (a.kind === "sequence_classifier" ? 0 : 1) - (b.kind === "sequence_classifier" ? 0 : 1));
    const lms = models.models.filter((m) => m.kind === "causal_lm").map((m) => m.name);
    const text = el("textarea", { id: "whatif-text", placeholder: "Type or paste a text…" }, "The film was dull, but the actors were wonderful and funny.");
    const model = el("select", { id: "whatif-model" }, ordered.map((m) => el("option", { value: m.name }, m.name)));
    const labels = el("input", { id: "whatif-labels", placeholder: "negative,positive", size: 22 });
    const labelsBox = el("label", { title: "zero-shot labels of a language model" }, "labels (zero-shot)", labels);
    const button = el("button", { id: "whatif-run", type: "submit" }, "Predict & explain");
    const error = inlineError("whatif-error");
    const status = el("div", { id: "whatif-status" });
    const predictions = el("div", { class: "compare", id: "whatif-predictions" });
    const explanation = el("div", { class: "card", id: "whatif-explanation" });
    const diffBox = el("div", { id: "whatif-diff-box" });
    const options = searchOptions(lms);
    const findCf = el("button", { id: "whatif-find-cf", type: "button" }, "Find a counterfactual");
    const findAnchor = el("button", { id: "whatif-find-anchor", type: "button", class: "secondary" }, "Find an anchor");
    const searchStatus = el("div", { id: "whatif-search-status" });
    const searchOut = el("div", { id: "whatif-search-result" });
    const result = el("div", { id: "whatif-result", hidden: true }, predictions, explanation, diffBox, el("div", { class: "actions" }, findCf, findAnchor), options.node, searchStatus, searchOut);
    const syncLabels = () => {
      labelsBox.hidden = (models.models.find((m) => m.name === model.value) || {}).kind !== "causal_lm";
    };
    model.addEventListener("change", syncLabels);
    syncLabels();

    const s = { text: "", model: "", labels: null, words: [], before: null, exp: null, edits: new Map(), seq: 0, timer: null, picked: null };
    const base = () => ({ text: s.text, model: s.model, ...(s.labels ? { labels: s.labels } : {}) });

    // ------------------------------------------------------------------ the word editor
    const replace = el("input", { id: "whatif-replace", placeholder: "replace with…", size: 16 });
    const editorWord = el("b", {});
    const editor = el(
      "div",
      { class: "editor", id: "whatif-editor", hidden: true },
      editorWord,
      el("button", { type: "button", id: "whatif-remove", class: "secondary", onclick: () => setEdit(s.picked, "") }, "Remove"),
      replace,
      el("button", { type: "button", id: "whatif-restore", class: "secondary", onclick: () => setEdit(s.picked, null) }, "Restore"),
      el("button", { type: "button", class: "secondary", onclick: () => (editor.hidden = true) }, "Close"),
    );
    replace.addEventListener("input", () => replace.value.trim() && setEdit(s.picked, replace.value.trim()));
    replace.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") editor.hidden = true;
    });
    const pick = (w) => {
      s.picked = w.index;
      editorWord.textContent = `“${w.word}”`;
      replace.value = s.edits.get(w.index) || "";
      editor.hidden = false;
      replace.focus();
    };
    const renderWords = () => {
      const old = explanation.querySelector("#whatif-words");
      const fresh = wordsView(s.words, s.exp, s.edits, pick);
      if (old) old.replaceWith(fresh);
      else explanation.append(fresh);
    };
    function setEdit(index, replacement) {
      if (index === null) return;
      if (replacement === null) s.edits.delete(index);
      else s.edits.set(index, replacement);
      renderWords();
      clearTimeout(s.timer);
      s.timer = setTimeout(predictEdited, DEBOUNCE_MS); // one call for a burst of clicks or keys
    }

    // ------------------------------------------------------------- the edited prediction
    async function predictEdited() {
      const seq = ++s.seq;
      if (!s.edits.size) {
        predictions.querySelector("#whatif-edited")?.remove();
        clear(diffBox);
        return;
      }
      const edits = [...s.edits].map(([index, replacement]) => ({ index, replacement }));
      try {
        const d = await api("/api/whatif/edit", { method: "POST", body: { ...base(), edits } });
        if (seq !== s.seq) return; // a newer edit is on its way
        predictions.querySelector("#whatif-edited")?.remove();
        predictions.append(predictionCard("edited", d.after, "whatif-edited", d.before));
        clear(diffBox).append(diffView(d.diff));
        error.show("");
      } catch (err) {
        if (seq === s.seq) error.show(err.message);
      }
    }
    const applyEdits = (edits) => {
      s.edits = new Map(edits.map((e) => [e.index, e.replacement]));
      editor.hidden = true;
      renderWords();
      predictEdited();
      explanation.scrollIntoView({ block: "start" });
    };

    // ------------------------------------------------------------------ the first view
    const showExplanation = (doc) => {
      s.exp = doc.explanations[0];
      const e = s.exp;
      const name = e.auto ? `auto → ${e.auto.chosen}` : e.method;
      explanation.className = `card ${e.verdict ? e.verdict.status : ""}`; // "fails": faint words
      clear(explanation).append(
        el("h3", {}, `Why: ${name}`),
        verdictLine(e),
        e.summary ? el("div", { class: "summary" }, e.summary) : null,
        e.auto ? el("div", { class: "why" }, e.auto.reason) : null,
      );
      renderWords();
      explanation.append(editor, legend(), el("div", { class: "actions" }, el("span", { class: "muted" }, "Click a word to remove or replace it."), el("button", { type: "button", id: "whatif-reset", class: "secondary", onclick: () => applyEdits([]) }, "Reset edits")));
    };
    const form = el(
      "form",
      { class: "panel", id: "whatif-form" },
      el("label", {}, "text", text),
      el("div", { class: "row" }, el("label", {}, "model", model), labelsBox, button),
      error.box,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      error.show("");
      Object.assign(s, { text: text.value, model: model.value, labels: labelsBox.hidden ? null : labels.value.trim() || null, edits: new Map(), exp: null, seq: s.seq + 1 });
      button.disabled = true;
      const prog = progressBox();
      clear(status).append(prog.box);
      try {
        const first = await api("/api/whatif/edit", { method: "POST", body: { ...base(), edited_text: s.text } });
        s.words = first.words;
        s.before = first.before;
        clear(predictions).append(predictionCard("original", first.before, "whatif-original"));
        clear(explanation).append(el("h3", {}, "Why"), el("div", { class: "muted" }, "explaining…"));
        renderWords();
        clear(diffBox);
        clear(searchOut);
        editor.hidden = true;
        result.hidden = false;
        const body = { ...base(), methods: ["auto"], granularity: "word", summary: true, async: true };
        if (s.labels) body.task = "zero_shot";
        showExplanation(await runWork("/api/explain", body, prog.update));
      } catch (err) {
        error.show(err.message);
      } finally {
        clear(status);
        button.disabled = false;
      }
    });

    // --------------------------------------------------------------------- the searches
    const search = async (path, extra, render) => {
      error.show("");
      findCf.disabled = findAnchor.disabled = true;
      const prog = progressBox();
      clear(searchStatus).append(prog.box);
      try {
        const doc = await runWork(path, { ...base(), ...extra, async: true }, prog.update);
        clear(searchOut).append(render(doc.results[0]));
      } catch (err) {
        error.show(err.message);
      } finally {
        clear(searchStatus);
        findCf.disabled = findAnchor.disabled = false;
      }
    };
    findCf.addEventListener("click", () => search("/api/whatif/counterfactual", options.counterfactual(), (r) => counterfactualView(r, s.words, applyEdits)));
    findAnchor.addEventListener("click", () => search("/api/whatif/anchor", options.anchor(), (r) => anchorView(r, s.words)));
    root.append(el("h2", {}, "What if the text were different?"), form, status, result);
  },
};
