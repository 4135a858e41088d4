// The Compare page: compression studies from the run store (what quantizing or pruning a model does
// to its accuracy and its explanations); open one's report; start a small one as a background job.
import { api, runWork } from "./api.js";
import { clear, el, inlineError, table } from "./dom.js";
import { compareReportView } from "./compare_views.js";
import { methodBoxes, progressBox, tickedMethods } from "./explain.js";
import { fieldOf } from "./forms.js";
import { exportButtons } from "./views.js";

const PAGE = 50;

function agreement(r) {
  const a = (r.summary || {}).agreement || {};
  return Object.entries(a).map(([spec, v]) => `${spec}: ${v === null ? "–" : v.toFixed(3)}`).join(" · ");
}

function runsTable(runs) {
  const rows = runs.map((r) => [
    r.created_at.slice(0, 19),
    r.reference || "",
    r.variants.join(", "),
    `${r.dataset || ""}${r.n_texts ? ` (n = ${r.n_texts})` : ""}`,
    (r.methods || []).join(", "),
    r.status + (r.error ? ` (${r.error})` : ""),
    agreement(r),
    el("a", { href: `#compare/${encodeURIComponent(r.run_id)}`, class: "open" }, "open"),
  ]);
  const t = table(["created", "reference", "variants", "dataset", "methods", "status", "agreement with reference", ""], rows, { id: "compare-runs" });
  runs.forEach((r, i) => t.rows[i + 1].setAttribute("data-run", r.run_id));
  return t;
}

function startForm(models, methods, datasets, limits, onDone, notice) {
  const classifiers = models.models.filter((m) => m.kind !== "causal_lm");
  const reference = el("select", { id: "compare-reference" }, (classifiers.length ? classifiers : models.models).map((m) => el("option", { value: m.name }, m.name)));
  const variants = el("input", { id: "compare-variants", value: "rtn8,magnitude:0.5", size: 28, title: "int8, rtn4:g32, rtn8, magnitude:0.5, heads:0.25, … (comma-separated)" });
  const dataset = el("select", { id: "compare-dataset" }, datasets.map((d) => el("option", { value: d.name, title: d.description }, d.name)));
  const limit = el("input", { id: "compare-limit", value: "20", size: 5, inputmode: "numeric" });
  const rounds = el("input", { id: "compare-rounds", value: "3", size: 3, inputmode: "numeric", title: "interleaved timing rounds" });
  const button = el("button", { id: "compare-run", type: "submit" }, "Compare");
  const error = inlineError("compare-error");
  const status = el("div", { id: "compare-status" });
  const form = el(
    "form",
    { class: "panel", id: "compare-form" },
    el(
      "div",
      { class: "row" },
      el("label", {}, "reference", reference),
      el("label", {}, "variants", variants),
      el("label", {}, "dataset", dataset),
      el("label", {}, `examples (at most ${limits.max_benchmark_examples})`, limit),
      el("label", {}, "timing rounds", rounds),
    ),
    methodBoxes("compare-method", ["occlusion"], methods.methods.filter((m) => m.name !== "auto"), limits.max_methods),
    el("div", { class: "row" }, button),
    error.box,
  );
  const fields = { variants, dataset, limit, rounds, methods: form.querySelector("fieldset.methods") };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    notice("");
    error.show("");
    const ticked = tickedMethods(form, "compare-method");
    if (!ticked.length) {
      error.show("Tick at least one method.", fields.methods);
      return;
    }
    const asNumber = (input) => (Number.isFinite(Number(input.value)) && input.value.trim() ? Number(input.value) : input.value);
    const body = { reference: reference.value, variants: variants.value, dataset: dataset.value, limit: asNumber(limit), rounds: asNumber(rounds), methods: ticked };
    const prog = progressBox();
    clear(status).append(prog.box);
    button.disabled = true;
    try {
      onDone(await runWork("/api/compare", body, prog.update));
    } catch (err) {
      const named = fieldOf(err.message, Object.keys(fields));
      error.show(err.message, named && fields[named]);
    } finally {
      clear(status);
      button.disabled = false;
    }
  });
  return el("details", { class: "start", id: "compare-start" }, el("summary", {}, "Run a new comparison"), form, status);
}

export const comparePage = {
  async build(root, { models, methods, limits, notice }) {
    const { datasets } = await api("/api/datasets");
    const list = el("div", { id: "compare-list" });
    const more = el("button", { id: "compare-more", type: "button", class: "secondary", hidden: true }, "Show more");
    const detail = el("div", { id: "compare-detail" });
    let shown = 0;
    const refresh = async (append = false) => {
      const offset = append ? shown : 0;
      const data = await api(`/api/compare?limit=${PAGE + 1}&offset=${offset}`);
      more.hidden = data.runs.length <= PAGE;
      const runs = data.runs.slice(0, PAGE);
      shown = offset + runs.length;
      const old = list.querySelector("table");
      if (append && old) old.append(...runsTable(runs).querySelectorAll("tr[data-run]"));
      else clear(list).append(runs.length ? runsTable(runs) : el("div", { class: "muted", id: "compare-empty" }, "No compare runs yet: run one below, or `explainlm compare` on the command line."));
    };
    const show = (doc) => {
      clear(detail).append(el("h2", {}, `Compression study · run ${doc.run_id}`), exportButtons(doc.run_id, (e) => notice(e.message)), compareReportView(doc));
      detail.scrollIntoView({ block: "start" });
    };
    const done = async (doc) => {
      await refresh();
      show(doc);
    };
    more.addEventListener("click", () => refresh(true).catch((e) => notice(e.message)));
    this.refresh = refresh;
    this.show = show;
    this.detail = detail;
    root.append(
      el("h2", {}, "Compare compressed models"),
      el("div", { class: "muted" }, "What quantization and pruning do to accuracy, speed and explanations (stored compare runs, newest first)."),
      list,
      more,
      startForm(models, methods, datasets, limits, done, notice),
      detail,
    );
  },
  async enter(root, hash) {
    await this.refresh();
    const id = decodeURIComponent(hash.split("/")[1] || "");
    if (id) this.show(await api(`/api/compare/${encodeURIComponent(id)}`));
    else clear(this.detail);
  },
};
