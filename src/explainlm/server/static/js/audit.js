// The Audit page: choose an audit kind and its options (the form comes from the service's request
// model), run it as a background job with progress and cancel, then read its report.
import { api, runWork } from "./api.js";
import { auditView } from "./audit_views.js";
import { clear, el, inlineError } from "./dom.js";
import { progressBox } from "./explain.js";
import { fieldOf, fieldsForm } from "./forms.js";
import { exportButtons } from "./views.js";

const TITLES = {
  fairness: "group fairness (your predictions or a classifier's)",
  counterfactual: "counterfactual identity swaps (EEC or your texts)",
  "lm-bias": "language-model bias (CrowS-Pairs, BBQ, WinoBias, BOLD, your pairs)",
  bios: "Bias in Bios (occupation classifier)",
};

export const auditPage = {
  async build(root, { models, notice }) {
    const { kinds, max_items: most } = await api("/api/audit/kinds");
    const kind = el("select", { id: "audit-kind" }, Object.keys(kinds).map((k) => el("option", { value: k }, `${k} — ${TITLES[k] || ""}`)));
    const summary = el("div", { class: "muted", id: "audit-summary" });
    const fieldsBox = el("div", { id: "audit-fields" });
    const button = el("button", { id: "audit-run", type: "submit" }, "Run audit");
    const error = inlineError("audit-error");
    const status = el("div", { id: "audit-status" });
    const out = el("div", { id: "audit-result" });
    let form = null;
    const showKind = () => {
      form = fieldsForm(kinds[kind.value].fields, models.models);
      summary.textContent = `${kinds[kind.value].summary} At most ${most} items per audit on this server.`;
      clear(fieldsBox).append(form.node);
      error.show("");
    };
    kind.addEventListener("change", showKind);
    showKind();
    const panel = el(
      "form",
      { class: "panel", id: "audit-form" },
      el("div", { class: "row" }, el("label", {}, "audit", kind)),
      summary,
      fieldsBox,
      el("div", { class: "row" }, button),
      error.box,
    );
    panel.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      notice("");
      error.show("");
      const names = kinds[kind.value].fields.map((f) => f.name);
      const { body, error: bad, field } = await form.values();
      if (bad) {
        error.show(bad, form.field(field));
        return;
      }
      const prog = progressBox();
      clear(status).append(prog.box);
      button.disabled = true;
      try {
        const doc = await runWork(`/api/audit/${kind.value}`, body, prog.update);
        clear(out).append(exportButtons(doc.run_id, (e) => notice(e.message)), auditView(doc));
      } catch (err) {
        const named = fieldOf(err.message, names);
        error.show(err.message, named && form.field(named)); // the previous report stays
      } finally {
        clear(status);
        button.disabled = false;
      }
    });
    root.append(el("h2", {}, "Audit a model for unfair behaviour"), panel, status, out);
  },
};
