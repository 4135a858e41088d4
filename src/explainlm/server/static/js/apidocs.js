// A small, local API reference rendered from /openapi.json (no CDN, no build step).
import { clear, el } from "./dom.js";

function schemaOf(spec, ref) {
  const name = ref.split("/").pop();
  return [name, spec.components.schemas[name]];
}

function fields(spec, schema) {
  if (!schema || !schema.properties) return null;
  const rows = Object.entries(schema.properties).map(([k, p]) => {
    const type = p.type || (p.anyOf || []).map((x) => x.type || (x.$ref || "").split("/").pop()).join(" | ") || (p.enum ? p.enum.join(" | ") : "");
    return el("tr", {}, el("td", {}, el("code", {}, k)), el("td", {}, type), el("td", {}, p.default === undefined ? "" : JSON.stringify(p.default)), el("td", {}, p.description || ""));
  });
  return el("table", { class: "runs" }, el("tr", {}, ["field", "type", "default", ""].map((h) => el("th", {}, h))), rows);
}

const spec = await (await fetch("/openapi.json")).json();
const root = clear(document.getElementById("api-docs"));
root.append(el("p", {}, spec.info.description || ""));
for (const [path, ops] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    const card = el("div", { class: "card", style: "margin:.8rem 0" }, el("h3", {}, el("code", {}, `${method.toUpperCase()} ${path}`)), el("div", {}, op.summary || ""));
    if (op.description) card.append(el("p", { class: "muted", style: "white-space:pre-wrap" }, op.description));
    const params = (op.parameters || []).map((p) => `${p.name} (${p.in})`);
    if (params.length) card.append(el("div", { class: "muted" }, `parameters: ${params.join(", ")}`));
    const body = op.requestBody?.content?.["application/json"]?.schema;
    if (body?.$ref) {
      const [name, schema] = schemaOf(spec, body.$ref);
      card.append(el("div", { class: "muted" }, `JSON body: ${name}`), fields(spec, schema));
    }
    root.append(card);
  }
}
