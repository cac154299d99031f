// Small helpers: building DOM nodes safely (text is never parsed as HTML) and formatting values.

/**
 * Create an element: `h("button", {class: "btn", onclick: f, dataset: {testid: "x"}}, "Label")`.
 * Attributes with a null/false value are left out; children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/**
 * The states (in the server's order), the user operations `{name, label, danger}` and the list's sort keys. The
 * server defines them (`/ui/config.json`, from jobctl/states.py and the store's sort keys): `useConfig` sets
 * them before anything is shown, and nothing here lists them again.
 */
export let STATUSES = [];
export let ACTIONS = [];
export let SORTS = [];
/** The states in which a job's params may be edited. */
export let EDITABLE = [];

/** Take the states, operations and sort keys from the page's config (`/ui/config.json`). */
export function useConfig(config) {
  STATUSES = [...config.statuses];
  const irreversible = new Set(config.irreversible);
  ACTIONS = config.operations.map((name) => ({ name, label: capitalized(name), danger: irreversible.has(name) }));
  SORTS = [...config.sorts];
  EDITABLE = [...(config.editable || [])];
}

/** `PAUSED` -> `Paused`, `pause` -> `Pause`. */
export function capitalized(word) {
  return word.charAt(0).toUpperCase() + word.slice(1).toLowerCase();
}

const SVG = "http://www.w3.org/2000/svg";

/** 12×12 status glyphs (stroke/fill in currentColor), drawn so they read at badge size. */
const STATUS_ICONS = {
  PENDING: [
    ["circle", { cx: 6, cy: 6, r: 4.6, fill: "none", "stroke-width": 1.5 }],
    ["path", { d: "M6 3.4V6l1.8 1.2", fill: "none", "stroke-width": 1.4, "stroke-linecap": "round" }],
  ],
  RUNNING: [["path", { d: "M3.5 2.2v7.6L9.8 6z", stroke: "none" }]],
  PAUSED: [
    ["rect", { x: 2.6, y: 2.2, width: 2.4, height: 7.6, rx: 0.6, stroke: "none" }],
    ["rect", { x: 7, y: 2.2, width: 2.4, height: 7.6, rx: 0.6, stroke: "none" }],
  ],
  ERROR: [
    ["circle", { cx: 6, cy: 6, r: 5, stroke: "none" }],
    ["path", { d: "M6 3.2v3.3M6 8.4v.3", stroke: "#fff", "stroke-width": 1.5, "stroke-linecap": "round" }],
  ],
  DISCARDED: [
    ["circle", { cx: 6, cy: 6, r: 4.6, fill: "none", "stroke-width": 1.5 }],
    ["path", { d: "M2.9 9.1l6.2-6.2", "stroke-width": 1.5 }],
  ],
  FINISHED: [
    [
      "path",
      {
        d: "M2.2 6.3l2.5 2.5 5.1-5.3",
        fill: "none",
        "stroke-width": 1.8,
        "stroke-linecap": "round",
        "stroke-linejoin": "round",
      },
    ],
  ],
};

/** The status's glyph as an inline SVG (decorative: the status word is always next to it). */
export function statusIcon(status) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 12 12");
  svg.setAttribute("class", "badge-icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("fill", "currentColor");
  svg.setAttribute("stroke", "currentColor");
  for (const [tag, attrs] of STATUS_ICONS[status] || []) {
    const part = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) part.setAttribute(key, String(value));
    svg.append(part);
  }
  return svg;
}

/** A status badge: colour plus an icon plus the word, so it is never told by colour alone. */
export function statusBadge(status, testid = "status") {
  const name = status || "UNKNOWN";
  return h(
    "span",
    { class: `badge badge-${name.toLowerCase()}`, dataset: { testid, status: name } },
    statusIcon(name),
    h("span", { class: "badge-text" }, name),
  );
}

/** A progress bar with its percentage as text. */
export function progressBar(progress, status, testid = "progress") {
  const bar = h("div", {
    class: `progress progress-${(status || "").toLowerCase()}`,
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": "100",
    dataset: { testid },
  });
  const fill = h("div", { class: "progress-fill" });
  const label = h("span", { class: "progress-label" });
  bar.append(h("div", { class: "progress-track" }, fill), label);
  setProgress(bar, progress, status);
  return bar;
}

export function setProgress(bar, progress, status) {
  const value = Math.max(0, Math.min(100, Number(progress) || 0));
  const text = `${value >= 99.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)}%`;
  bar.setAttribute("aria-valuenow", value.toFixed(1));
  bar.setAttribute("aria-valuetext", text);
  bar.dataset.value = value.toFixed(2);
  if (status) bar.className = `progress progress-${status.toLowerCase()}`;
  bar.querySelector(".progress-fill").style.width = `${value}%`;
  bar.querySelector(".progress-label").textContent = text;
}

const pad = (n) => String(n).padStart(2, "0");

/**
 * Local time, compact: `05-01 13:45:12` this year, `2023-05-01 13:45` before; "—" for none.
 * `full` always gives `2024-05-01 13:45:12`.
 */
export function formatTime(iso, full = false) {
  if (!iso) return "\u2014";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const date = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (full) return `${d.getFullYear()}-${date} ${time}:${pad(d.getSeconds())}`;
  if (d.getFullYear() === new Date().getFullYear()) return `${date} ${time}:${pad(d.getSeconds())}`;
  return `${d.getFullYear()}-${date} ${time}`;
}

/** A time element showing the local time, with the exact UTC time as its tooltip. */
export function timeCell(iso, full = false) {
  if (!iso) return h("span", { class: "muted" }, "\u2014");
  return h("time", { datetime: iso, title: `${formatTime(iso, true)} (${iso})` }, formatTime(iso, full));
}

/** `0.4 s`, `12 s`, `3 m 05 s`, `2 h 01 m`, `3 d 4 h`. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "\u2014";
  const s = Math.max(0, Number(seconds));
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${pad(Math.floor(s % 60))} s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours} h ${pad(m % 60)} m`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export const shortId = (id) => (id || "").slice(0, 8);

export function targetText(target) {
  if (!target) return "";
  return `${target.kind}:${target.name}`;
}

/**
 * The buttons of the operations `job.allowed` offers now, in ACTIONS order; each calls `onAction(action, button)`.
 * `testid(action)` names each button for the tests; `label(action)`, if given, is its aria-label.
 */
export function actionButtons(job, onAction, { testid, label = null }) {
  return ACTIONS.filter((action) => job.allowed.includes(action.name)).map((action) => {
    const attrs = {
      type: "button",
      class: `btn btn-sm${action.danger ? " btn-danger-text" : ""}`,
      dataset: { testid: testid(action) },
    };
    if (label) attrs["aria-label"] = label(action);
    const button = h("button", attrs, action.label);
    button.addEventListener("click", () => onAction(action.name, button));
    return button;
  });
}
