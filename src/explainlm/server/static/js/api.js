// The JSON API client: bearer token, errors as exceptions, background jobs with progress.

const TOKEN_KEY = "explainlm-token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const h = { ...extra };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

let onUnauthorised = () => {};
export function whenUnauthorised(fn) {
  onUnauthorised = fn;
}

/** fetch + JSON; a non-2xx answer throws ApiError with the server's {"error"} message. */
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) {
    if (r.status === 401) onUnauthorised();
    const msg = (data && data.error) || `${r.status} ${r.statusText}`;
    const retry = r.headers.get("Retry-After");
    throw new ApiError(r.status, retry ? `${msg} (retry in ${retry} s)` : msg);
  }
  return data;
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/**
 * POST work; when the server answers {job_id}, poll it until it ends.
 * progress({status, progress, message, cancel}) is called while the job runs.
 */
export async function runWork(path, body, progress = () => {}) {
  const first = await api(path, { method: "POST", body });
  if (!first || !first.job_id) return first;
  const id = first.job_id;
  let cancelled = false;
  const cancel = async () => {
    cancelled = true;
    await api(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  };
  for (;;) {
    const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
    progress({ ...job, cancel });
    if (job.status === "finished") return job.result;
    if (job.status === "failed") throw new ApiError(400, job.error || "the job failed");
    if (job.status === "cancelled" || cancelled) throw new ApiError(409, "cancelled");
    await sleep(300);
  }
}

/** Download a run export (with the token header) as a file. */
export async function download(runId, format) {
  const path = `/api/runs/${encodeURIComponent(runId)}/export?format=${format}`;
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) {
    let msg = `${r.status}`;
    try {
      msg = (await r.json()).error;
    } catch {
      /* keep the status */
    }
    throw new ApiError(r.status, msg);
  }
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `explainlm-${runId}.${format}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
