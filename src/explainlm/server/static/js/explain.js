// The Explain page: text, model, task (classify / zero-shot / generate), methods → heatmaps.
import { runWork } from "./api.js";
import { clear, el } from "./dom.js";
import { exportButtons, explanationsView, generationView } from "./views.js";

const DEFAULT = ["auto"];

/** A progress bar with a cancel button while a background job runs. */
export function progressBox() {
  const bar = el("progress", { max: 1, value: 0 });
  const label = el("span", { class: "muted" }, "working…");
  const cancel = el("button", { class: "secondary", type: "button", hidden: true }, "Cancel");
  const box = el("div", { class: "progress" }, bar, label, cancel);
  const update = (job) => {
    bar.value = job.progress || 0;
    label.textContent = `${job.status}${job.message ? ` · ${job.message}` : ""}`;
    cancel.hidden = false;
    cancel.onclick = () => job.cancel();
  };
  return { box, update };
}

/**
 * One checkbox per method the server offers (GET /api/methods), the chosen ones first;
 * each box's tooltip is the method's summary and citation.
 */
export function methodBoxes(name, chosen, methods) {
  const first = chosen.map((m) => methods.find((x) => x.name === m)).filter(Boolean);
  const ordered = [...first, ...methods.filter((m) => !chosen.includes(m.name))];
  return el(
    "fieldset",
    { class: "methods" },
    el("legend", {}, "methods"),
    ordered.map((m) =>
      el(
        "label",
        { class: "check", title: [m.description, m.citation].filter(Boolean).join(" — ") },
        el("input", { type: "checkbox", name, value: m.name, checked: chosen.includes(m.name) }),
        m.name,
      ),
    ),
  );
}

export const explainPage = {
  build(root, { models, methods, notice }) {
    const text = el("textarea", { id: "explain-text", placeholder: "Type a sentence to explain…" }, "This movie was wonderful, touching and funny.");
    const model = el("select", { id: "explain-model" }, models.models.map((m) => el("option", { value: m.name }, m.name)));
    const task = el(
      "select",
      { id: "explain-task" },
      el("option", { value: "classify" }, "classify"),
      el("option", { value: "zero_shot" }, "zero-shot labels"),
      el("option", { value: "generate" }, "generate"),
    );
    const labels = el("input", { id: "explain-labels", placeholder: "negative,positive", size: 24 });
    const labelsBox = el("label", { hidden: true }, "labels (comma-separated)", labels);
    const gran = el("select", { id: "explain-granularity" }, el("option", {}, "word"), el("option", {}, "token"));
    const check = el("input", { id: "explain-check", type: "checkbox", checked: true });
    const checkBox = el("label", { class: "check", title: "Compute each explanation's faithfulness check (auto always does)" }, check, "faithfulness check");
    const button = el("button", { id: "explain-run", type: "submit" }, "Explain");
    const out = el("div", { id: "explain-result" });
    task.addEventListener("change", () => {
      labelsBox.hidden = task.value !== "zero_shot";
    });
    const form = el(
      "form",
      { class: "panel", id: "explain-form" },
      el("label", {}, "text", text),
      el("div", { class: "row" }, el("label", {}, "model", model), el("label", {}, "task", task), labelsBox, el("label", {}, "granularity", gran)),
      methodBoxes("explain-method", DEFAULT, methods.methods),
      el("div", { class: "row" }, checkBox, button),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      const methods = [...form.querySelectorAll("input[name=explain-method]:checked")].map((i) => i.value);
      const generating = task.value === "generate";
      const body = { text: text.value, model: model.value, methods, granularity: gran.value, summary: true, check: check.checked };
      if (generating) {
        body.prompt = body.text;
        delete body.text;
        body.max_new_tokens = 5;
      } else {
        if (task.value === "zero_shot") {
          body.task = "zero_shot";
          if (labels.value.trim()) body.labels = labels.value;
        }
      }
      const prog = progressBox();
      clear(out).append(prog.box);
      button.disabled = true;
      try {
        const doc = await runWork(generating ? "/api/generate" : "/api/explain", body, prog.update);
        clear(out).append(
          exportButtons(doc.run_id, (e) => notice(e.message)),
          generating ? generationView(doc) : explanationsView(doc),
        );
      } catch (err) {
        clear(out);
        notice(err.message);
      } finally {
        button.disabled = false;
      }
    });
    root.append(el("h2", {}, "Explain a prediction"), form, out);
  },
};
