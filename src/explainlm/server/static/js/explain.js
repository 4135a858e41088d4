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
 * each box's tooltip is the method's summary and citation. At most ``most`` can be ticked (the
 * server's per-request limit): the other boxes are disabled while that many are.
 */
export function methodBoxes(name, chosen, methods, most = Infinity) {
  const first = chosen.map((m) => methods.find((x) => x.name === m)).filter(Boolean);
  const ordered = [...first, ...methods.filter((m) => !chosen.includes(m.name))];
  const hint = el("span", { class: "muted hint" }, Number.isFinite(most) ? `at most ${most} per request` : "");
  const box = el(
    "fieldset",
    { class: "methods" },
    el("legend", {}, "methods ", hint),
    ordered.map((m) =>
      el(
        "label",
        { class: "check", title: [m.description, m.citation].filter(Boolean).join(" — ") },
        el("input", { type: "checkbox", name, value: m.name, checked: chosen.includes(m.name) }),
        m.name,
      ),
    ),
  );
  const sync = () => {
    const boxes = [...box.querySelectorAll("input[type=checkbox]")];
    const full = boxes.filter((b) => b.checked).length >= most;
    boxes.forEach((b) => {
      b.disabled = full && !b.checked;
    });
  };
  box.addEventListener("change", sync);
  sync();
  return box;
}

/** The ticked methods, or an error message when none is ticked. */
export function tickedMethods(form, name) {
  return [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
}

export const explainPage = {
  build(root, { models, methods, limits, notice }) {
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
    const gran = el("select", { id: "explain-granularity" }, el("option", {}, "word"), el("option", {}, "sentence"), el("option", {}, "token"));
    const check = el("input", { id: "explain-check", type: "checkbox", checked: true });
    const checkBox = el("label", { class: "check", title: "Compute each explanation's faithfulness check (auto always does)" }, check, "faithfulness check");
    const button = el("button", { id: "explain-run", type: "submit" }, "Explain");
    const out = el("div", { id: "explain-result" });
    const status = el("div", { id: "explain-status" });
    task.addEventListener("change", () => {
      labelsBox.hidden = task.value !== "zero_shot";
    });
    const form = el(
      "form",
      { class: "panel", id: "explain-form" },
      el("label", {}, "text", text),
      el("div", { class: "row" }, el("label", {}, "model", model), el("label", {}, "task", task), labelsBox, el("label", {}, "granularity", gran)),
      methodBoxes("explain-method", DEFAULT, methods.methods, limits.max_methods),
      el("div", { class: "row" }, checkBox, button),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      const methods = tickedMethods(form, "explain-method");
      if (!methods.length) {
        notice("Tick at least one method.");
        return;
      }
      const generating = task.value === "generate";
      // always a background job: progress (loading the model, then the passes) and a cancel button
      const body = { text: text.value, model: model.value, methods, granularity: gran.value, summary: true, check: check.checked, async: true };
      if (generating && gran.value === "sentence") body.granularity = "word";
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
      clear(status).append(prog.box);
      button.disabled = true;
      try {
        const doc = await runWork(generating ? "/api/generate" : "/api/explain", body, prog.update);
        clear(out).append(
          exportButtons(doc.run_id, (e) => notice(e.message)),
          generating ? generationView(doc) : explanationsView(doc),
        );
      } catch (err) {
        notice(err.message); // the previous result stays
      } finally {
        clear(status);
        button.disabled = false;
      }
    });
    root.append(el("h2", {}, "Explain a prediction"), form, status, out);
  },
};
