// The HTTP API, with the signed-in user's token. The token lives in sessionStorage (this tab only) and is only
// ever sent in the Authorization header, never in a URL.

const TOKEN_KEY = "jobctl.token";
export const API = "/api/v1";

/** An answer other than 2xx: `status` is the HTTP status, `message` the API's `error.message`. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Headers for an authenticated request. */
export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
}

/** A query string from an object; arrays repeat the key, empty values are left out. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") search.append(key, String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function errorOf(response) {
  let body = null;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, body);
}

/**
 * Call the API: `request("GET", "/jobs")`. Resolves to the JSON answer (or text for `as: "text"`, a Blob for
 * `as: "blob"`, null for 204); rejects with an ApiError carrying the API's message.
 */
export async function request(method, path, { body, as = "json", signal } = {}) {
  const headers = authHeaders(body === undefined ? {} : { "Content-Type": "application/json" });
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached. Check your connection and try again.", null);
  }
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  if (as === "text") return response.text();
  if (as === "blob") return response.blob();
  return response.json();
}

export const api = {
  me: () => request("GET", "/me"),
  projects: () => request("GET", "/projects"),
  types: () => request("GET", "/types"),
  jobs: (params, signal) => request("GET", `/jobs${query(params)}`, { signal }),
  job: (id) => request("GET", `/jobs/${encodeURIComponent(id)}`),
  events: (id) => request("GET", `/jobs/${encodeURIComponent(id)}/events`),
  operate: (id, action) =>
    action === "delete"
      ? request("DELETE", `/jobs/${encodeURIComponent(id)}`)
      : request("POST", `/jobs/${encodeURIComponent(id)}/${action}`),
  batch: (action, ids) => request("POST", "/jobs/batch", { body: { action, ids } }),
  /** A batch over every job matching `filter`; with `dryRun`, only what it would do (nothing changes). */
  batchFilter: (action, filter, dryRun = false) =>
    request("POST", "/jobs/batch", { body: { action, filter, dry_run: dryRun } }),
  editParams: (id, params) => request("PATCH", `/jobs/${encodeURIComponent(id)}`, { body: { params } }),
  diagnostics: (id) => request("GET", `/jobs/${encodeURIComponent(id)}/diagnostics`, { as: "blob" }),
  log: (id, index, tail) =>
    request("GET", `/jobs/${encodeURIComponent(id)}/steps/${index}/log${query({ tail })}`, { as: "text" }),
  logBlob: (id, index) => request("GET", `/jobs/${encodeURIComponent(id)}/steps/${index}/log`, { as: "blob" }),
};

/** The page's config (no token needed): `{flower_url, statuses, operations, irreversible, sorts, editable}`. */
export async function uiConfig() {
  const response = await fetch("/ui/config.json", { cache: "no-store" });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}
