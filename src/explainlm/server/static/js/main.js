// Page routing (#explain, #generate, #whatif, #audit, #compare, #history), the notice bar and the
// API token form.
import { api, setToken, whenUnauthorised } from "./api.js";
import { auditPage } from "./audit.js";
import { comparePage } from "./compare.js";
import { explainPage } from "./explain.js";
import { generatePage } from "./generate.js";
import { historyPage } from "./history.js";
import { whatifPage } from "./whatif.js";

const pages = { explain: explainPage, generate: generatePage, whatif: whatifPage, audit: auditPage, compare: comparePage, history: historyPage };
const built = new Set();
let models = null;
let methods = null;
let limits = null;

export function notice(message) {
  const box = document.getElementById("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

async function loadModels() {
  if (!models) models = await api("/api/models");
  return models;
}

async function loadLimits() {
  if (!limits) limits = (await api("/api/limits")).limits;
  return limits;
}

async function loadMethods() {
  if (!methods) methods = await api("/api/methods");
  return methods;
}

async function show() {
  const name = (location.hash.slice(1).split("/")[0] || "explain").toLowerCase();
  const page = pages[name] ? name : "explain";
  for (const p of Object.keys(pages)) document.getElementById(`page-${p}`).hidden = p !== page;
  document.querySelectorAll("nav a[data-page]").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  const root = document.getElementById(`page-${page}`);
  notice("");
  try {
    if (!built.has(page)) {
      await pages[page].build(root, { models: await loadModels(), methods: await loadMethods(), limits: await loadLimits(), notice });
      built.add(page);
    }
    if (pages[page].enter) await pages[page].enter(root, location.hash);
  } catch (err) {
    notice(err.message);
  }
}

whenUnauthorised(() => {
  document.getElementById("token-form").hidden = false;
  notice("This server needs an API token: enter it at the top right.");
});

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setToken(document.getElementById("token-input").value.trim());
  document.getElementById("token-form").hidden = true;
  models = null;
  methods = null;
  limits = null;
  built.clear();
  show();
});

window.addEventListener("hashchange", show);
show();
