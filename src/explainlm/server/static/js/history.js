// The History page: runs from the store, searchable; open one; compare two explanations of a text.
import { api } from "./api.js";
import { auditView } from "./audit_views.js";
import { compareReportView } from "./compare_views.js";
import { clear, el, heatmap } from "./dom.js";
import { benchmarkView, exportButtons, explanationsView, generationView } from "./views.js";

const PAGE = 50;

/** The methods a run used (from its stored request). */
function methodsOf(r) {
  const spec = (r.params && (r.params.request || r.params)) || {};
  const m = spec.methods;
  return Array.isArray(m) ? m.join(", ") : typeof m === "string" ? m : "";
}

function runView(doc, notice) {
  const run = doc.run;
  const box = el("div", { class: "run-view" }, el("h2", {}, `${run.command} · ${run.model || ""} · ${run.created_at.slice(0, 19)}`));
  if (run.status !== "finished") box.append(el("div", { class: "muted" }, `status: ${run.status}${run.error ? ` (${run.error})` : ""}`));
  box.append(exportButtons(run.run_id, (e) => notice(e.message)));
  if (doc.explanations) box.append(explanationsView(doc));
  else if (doc.attributions) box.append(generationView(doc));
  else if (doc.benchmark) box.append(benchmarkView(doc));
  else if (doc.audit) box.append(auditView(doc.audit));
  else if (doc.compare) box.append(compareReportView(doc.compare));
  else if (doc.predictions) {
    box.append(el("table", { class: "runs" }, el("tr", {}, el("th", {}, "text"), el("th", {}, "label")), doc.predictions.map((p) => el("tr", {}, el("td", { class: "preview" }, p.text), el("td", {}, p.label)))));
  } else box.append(el("pre", {}, JSON.stringify(doc.run.summary ?? doc.tables ?? {}, null, 1)));
  return box;
}

/** Side by side: each text the two runs share, with every method's heatmap from each run. */
function compareView(a, b) {
  const textsB = new Set((b.explanations || []).map((e) => e.text));
  const shared = [...new Set((a.explanations || []).map((e) => e.text))].filter((t) => textsB.has(t));
  const box = el("div", { class: "compare-view" }, el("h2", {}, "Compare"));
  if (!shared.length) {
    box.append(el("div", { class: "muted" }, "These two runs explain no text in common."));
    return box;
  }
  for (const text of shared) {
    const col = (doc) =>
      el(
        "div",
        { class: "card" },
        el("h3", {}, `run ${doc.run.run_id} · ${doc.run.model || ""}`),
        doc.explanations.filter((e) => e.text === text).map((e) => el("div", { "data-method": e.method }, el("div", { class: "muted" }, `${e.method} · ${e.target}`), heatmap(e))),
      );
    box.append(el("div", { class: "prediction" }, el("div", { class: "text" }, text)), el("div", { class: "compare" }, col(a), col(b)));
  }
  return box;
}

export const historyPage = {
  build(root, { notice }) {
    const search = el("input", { id: "history-search", type: "search", placeholder: "search runs (text, id, model, command, status, parameters)", size: 40 });
    const more = el("button", { id: "history-more", type: "button", class: "secondary", hidden: true }, "Show more");
    let shown = 0; // rows listed so far
    const compare = el("button", { id: "history-compare", type: "button", class: "secondary", disabled: true }, "Compare selected");
    const list = el("div", { id: "history-list" });
    const detail = el("div", { id: "history-detail" });
    const selected = new Set();
    const refresh = async (append = false) => {
      const q = search.value.trim();
      const offset = append ? shown : 0;
      const query = new URLSearchParams({ limit: String(PAGE + 1), offset: String(offset) });
      if (q) query.set("search", q);
      const data = await api(`/api/runs?${query}`);
      more.hidden = data.runs.length <= PAGE;
      data.runs = data.runs.slice(0, PAGE);
      shown = offset + data.runs.length;
      const rows = data.runs.map((r) => {
        const pick = el("input", { type: "checkbox", title: "select to compare", disabled: r.command !== "explain", checked: selected.has(r.run_id) });
        pick.addEventListener("change", () => {
          if (pick.checked) selected.add(r.run_id);
          else selected.delete(r.run_id);
          compare.disabled = selected.size !== 2;
        });
        const open = el("a", { href: `#history/${encodeURIComponent(r.run_id)}`, class: "open" }, "open");
        return el(
          "tr",
          { "data-run": r.run_id },
          el("td", {}, pick),
          el("td", {}, r.created_at.slice(0, 19)),
          el("td", {}, r.command),
          el("td", {}, r.model || ""),
          el("td", { class: "methods" }, methodsOf(r)),
          el("td", { class: "preview" }, r.preview || ""),
          el("td", {}, r.status),
          el("td", {}, open),
        );
      });
      const head = el("tr", {}, ["", "created", "command", "model", "methods", "text", "status", ""].map((h) => el("th", {}, h)));
      const empty = q ? `No runs match “${q}”.` : "No runs yet.";
      const table = list.querySelector("table.runs");
      if (append && table) table.append(...rows);
      else clear(list).append(rows.length ? el("table", { class: "runs" }, head, rows) : el("div", { class: "muted", id: "history-empty" }, empty));
    };
    this.refresh = refresh;
    this.detail = detail;
    this.notice = notice;
    let timer = null;
    more.addEventListener("click", () => refresh(true).catch((e) => notice(e.message)));
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => refresh().catch((e) => notice(e.message)), 250);
    });
    compare.addEventListener("click", async () => {
      try {
        const [a, b] = await Promise.all([...selected].map((id) => api(`/api/runs/${encodeURIComponent(id)}`)));
        clear(detail).append(compareView(a, b));
      } catch (err) {
        notice(err.message);
      }
    });
    root.append(el("h2", {}, "History"), el("div", { class: "row actions" }, search, compare), list, more, detail);
  },
  async enter(root, hash) {
    await this.refresh();
    const id = decodeURIComponent(hash.split("/")[1] || "");
    if (id) {
      clear(this.detail).append(runView(await api(`/api/runs/${encodeURIComponent(id)}`), this.notice));
      this.detail.scrollIntoView({ block: "start" });
    } else clear(this.detail);
  },
};
