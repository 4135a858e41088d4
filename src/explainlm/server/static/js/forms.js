// Option forms built from a request model's field descriptions (GET /api/audit/kinds): the form
// offers exactly what the service validates; the server checks every value (errors shown inline).
import { el } from "./dom.js";

const UPLOAD = "__upload__";

function label(f) {
  return `${f.name.replaceAll("_", " ")}${f.required ? " *" : ""}`;
}

function modelSelect(f, models) {
  const opts = models.map((m) => el("option", { value: m.name }, `${m.name}${m.kind ? ` (${m.kind.replace("_", " ")})` : ""}`));
  const none = f.optional || !f.required ? [el("option", { value: "" }, f.name === "model" ? "(server default)" : "(none)")] : [];
  return el("select", {}, none, opts);
}

/** The input of one field; returns {node, input, read()} where read() is the JSON value (undefined: leave out). */
function fieldInput(f, models) {
  const id = `field-${f.name}`;
  if (f.type === "bool") {
    const input = el("input", { type: "checkbox", id, checked: Boolean(f.default) });
    return { node: el("label", { class: "check", title: f.description }, input, label(f)), input, read: () => input.checked };
  }
  if (f.type === "multi") {
    const boxes = f.choices.map((c) => el("input", { type: "checkbox", value: c, checked: (f.default || []).includes(c) }));
    const node = el("fieldset", { id, title: f.description }, el("legend", {}, label(f)), boxes.map((b, i) => el("label", { class: "check" }, b, f.choices[i])));
    return { node, input: node, read: () => boxes.filter((b) => b.checked).map((b) => b.value) };
  }
  let input;
  if (f.type === "choice") {
    input = el("select", { id }, f.optional ? el("option", { value: "" }, "(none)") : null, f.choices.map((c) => el("option", { value: c, selected: c === f.default }, c)));
  } else if (f.type === "model") {
    input = modelSelect(f, models);
    input.id = id;
  } else {
    const value = Array.isArray(f.default) ? f.default.join(",") : f.default ?? "";
    const numeric = f.type === "int" || f.type === "float";
    input = el("input", { id, value: String(value), size: numeric ? 7 : 22, inputmode: numeric ? "decimal" : null, placeholder: f.type === "list" ? "comma-separated" : "" });
  }
  const read = () => {
    const raw = input.value.trim();
    if (raw === "") return f.required ? "" : f.optional ? null : undefined;
    if (f.type === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
    if (f.type === "int" || f.type === "float") return Number.isFinite(Number(raw)) ? Number(raw) : raw; // the server names a bad number
    return raw;
  };
  return { node: el("label", { title: f.description }, label(f), input), input, read };
}

/** The data field: built-in sets by name, or a file read in the browser and sent as `upload`. */
function dataInput(f) {
  const choices = f.choices || [];
  const select = el("select", { id: "field-data" }, choices.map((c) => el("option", { value: c }, c)), el("option", { value: UPLOAD }, "upload a file…"));
  const file = el("input", { type: "file", id: "field-upload", accept: ".csv,.tsv,.jsonl,.txt", hidden: choices.length > 0 });
  const sync = () => {
    file.hidden = select.value !== UPLOAD;
  };
  select.addEventListener("change", sync);
  if (!choices.length) select.value = UPLOAD;
  sync();
  select.hidden = !choices.length;
  const title = f.description || "a built-in data set, or your own CSV/TSV/JSONL table";
  const node = el("label", { title }, label({ ...f, name: choices.length ? "data" : "file" }), el("span", { class: "row" }, select, file));
  const readUpload = async () => {
    if (select.value !== UPLOAD) return { data: select.value };
    const chosen = file.files && file.files[0];
    if (!chosen) return { error: "choose a file to upload (CSV, TSV, JSONL or TXT)" };
    return { upload: { name: chosen.name, content: await chosen.text() } };
  };
  return { node, input: select, readUpload, file };
}

/**
 * A form's fields from their descriptions. Returns {node, values(), field(name)}: values() is the
 * request body (async: an upload is read from disk), field(name) the input to mark on an error.
 */
export function fieldsForm(fields, models) {
  const inputs = new Map();
  const main = el("div", { class: "row fields" });
  const stats = el("fieldset", { class: "statistics" }, el("legend", {}, "statistics"));
  let data = null;
  for (const f of fields) {
    const made = f.type === "data" ? dataInput(f) : fieldInput(f, models);
    made.f = f;
    if (f.type === "data") {
      data = made;
      main.prepend(made.node);
    } else {
      inputs.set(f.name, made);
      (f.group === "statistics" ? stats : main).append(made.node);
    }
  }
  // options that apply to some values of another field only (e.g. BBQ's categories)
  const applies = (made) => {
    const when = made.f.when;
    const other = when && inputs.get(when.field);
    return !other || when.values.includes(other.input.value);
  };
  const sync = () => {
    for (const made of [...inputs.values(), data].filter(Boolean)) made.node.hidden = !applies(made);
  };
  main.addEventListener("change", sync);
  sync();
  const node = el("div", { class: "generated" }, main, stats.children.length > 1 ? stats : null);
  return {
    node,
    field: (name) => (name === "data" || name === "upload" ? data && data.input : inputs.get(name)?.input) || null,
    async values() {
      const body = {};
      for (const [name, made] of inputs) {
        if (!applies(made)) continue;
        const v = made.read();
        if (v !== undefined) body[name] = v;
      }
      if (data && applies(data)) {
        const got = await data.readUpload();
        if (got.error) return { error: got.error, field: "upload" };
        Object.assign(body, got);
      }
      return { body };
    },
  };
}

/** The field an API error names ("invalid request: n_boot: …", "limit must be …"), if any. */
export function fieldOf(message, names) {
  const m = /^(?:invalid request: )?([a-z_]+)(?:[:. ]| must| is)/.exec(message || "");
  return m && names.includes(m[1]) ? m[1] : null;
}
