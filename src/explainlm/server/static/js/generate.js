// The Generate page: a prompt's continuation and its per-token attribution matrix.
import { runWork } from "./api.js";
import { clear, el } from "./dom.js";
import { methodBoxes, progressBox, tickedMethods } from "./explain.js";
import { exportButtons, generationView } from "./views.js";

export const generatePage = {
  build(root, { models, methods, limits, notice }) {
    const prompt = el("textarea", { id: "generate-prompt", placeholder: "A prompt…" }, "The capital of France is");
    const gens = models.models.filter((m) => m.kind !== "sequence_classifier");
    const model = el("select", { id: "generate-model" }, (gens.length ? gens : models.models).map((m) => el("option", { value: m.name }, m.name)));
    const tokens = el("input", { id: "generate-tokens", type: "number", min: 1, max: 64, value: 5, size: 4 });
    const targetText = el("input", { id: "generate-target-text", placeholder: "optional: explain this continuation", size: 30 });
    const target = el(
      "select",
      { id: "generate-target" },
      ["token_logprob", "token_prob", "sequence_logprob"].map((t) => el("option", {}, t)),
    );
    const button = el("button", { id: "generate-run", type: "submit" }, "Generate & attribute");
    const out = el("div", { id: "generate-result" });
    const status = el("div", { id: "generate-status" });
    const form = el(
      "form",
      { class: "panel", id: "generate-form" },
      el("label", {}, "prompt", prompt),
      el(
        "div",
        { class: "row" },
        el("label", {}, "model", model),
        el("label", {}, "new tokens", tokens),
        el("label", {}, "target text", targetText),
        el("label", {}, "target", target),
      ),
      methodBoxes("generate-method", ["auto"], methods.methods, limits.max_methods),
      el("div", { class: "row" }, button),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      const methods = tickedMethods(form, "generate-method");
      if (!methods.length) {
        notice("Tick at least one method.");
        return;
      }
      const body = { prompt: prompt.value, model: model.value, methods, max_new_tokens: Number(tokens.value) || 5, target: target.value, summary: true, async: true };
      if (targetText.value) body.target_text = targetText.value;
      const prog = progressBox();
      clear(status).append(prog.box);
      button.disabled = true;
      try {
        const doc = await runWork("/api/generate", body, prog.update);
        clear(out).append(exportButtons(doc.run_id, (e) => notice(e.message)), generationView(doc));
      } catch (err) {
        notice(err.message); // the previous result stays
      } finally {
        clear(status);
        button.disabled = false;
      }
    });
    root.append(el("h2", {}, "Why this continuation?"), form, status, out);
  },
};
