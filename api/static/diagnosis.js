// Why a job is stuck and what went wrong, as the monitor shows them (docs/contract.md §7): a failure's code,
// message and "How to fix" hint, a step's info (small key-value details), and why a PENDING job has not started.
// Everything is built as elements and text nodes (format.js `h`), never parsed as HTML; a value is a link only
// when it is an http(s) URL, and such a link opens apart from the monitor (`rel="noopener noreferrer"`).

import { h, timeCell } from "./format.js";

/** True for an absolute `http:` or `https:` URL: the only values of a step's info shown as links. */
export function isWebUrl(value) {
  if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return false;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** The code of a failure as a small label (`timeout`, `worker_lost`, a step's own), or null. */
function codeLabel(code, testid) {
  return code ? h("span", { class: "error-code mono", dataset: { testid } }, code) : null;
}

/** The job's error (the failure that put it in ERROR): its code and message; null when it has none. */
export function jobError(job) {
  if (!job.error) return null;
  return h(
    "div",
    { class: "alert-inline", dataset: { testid: "detail-error" } },
    codeLabel(job.error_code, "detail-error-code"),
    h("span", { class: "error-message" }, job.error),
  );
}

/**
 * A step's error: its code and message, when it failed, and its hint under "How to fix". `error` is the step
 * JSON's `{code, message, hint, at}` (a plain message from an older server is shown as the message).
 */
export function stepError(error) {
  if (!error) return null;
  const failure = typeof error === "string" ? { code: null, message: error, hint: null, at: null } : error;
  return h(
    "div",
    { class: "alert-inline step-error", dataset: { testid: "step-error", code: failure.code || "" } },
    h(
      "div",
      { class: "step-error-line" },
      codeLabel(failure.code, "step-error-code"),
      h("span", { class: "error-message", dataset: { testid: "step-error-message" } }, failure.message),
      failure.at ? h("span", { class: "step-error-at" }, "failed ", timeCell(failure.at)) : null,
    ),
    failure.hint
      ? h(
          "div",
          { class: "step-hint", dataset: { testid: "step-hint" } },
          h("span", { class: "step-hint-label" }, "How to fix"),
          h("span", { class: "step-hint-text", dataset: { testid: "step-hint-text" } }, failure.hint),
        )
      : null,
  );
}

/** One value of a step's info: an http(s) URL as a link that opens in a new tab, anything else as its text. */
function infoValue(value) {
  if (isWebUrl(value)) {
    return h(
      "a",
      { href: value, target: "_blank", rel: "noopener noreferrer", dataset: { testid: "step-info-link" } },
      value,
    );
  }
  if (value === null || value === undefined) return h("span", { class: "muted" }, "null");
  return String(value);
}

/** A step's info (`ctx.info` in its code) as a list of keys and values; null when it reported none. */
export function stepInfo(info) {
  const entries = Object.entries(info || {});
  if (!entries.length) return null;
  return h(
    "dl",
    { class: "step-info", dataset: { testid: "step-info" } },
    entries.map(([key, value]) => [
      h("dt", { dataset: { testid: "step-info-key" } }, key),
      h("dd", { dataset: { testid: "step-info-value" } }, infoValue(value)),
    ]),
  );
}

/** Why a PENDING job has not started yet, for the detail panel; null for a job in another state. */
export function waitingFor(job) {
  if (job.status !== "PENDING" || !job.waiting_for) return null;
  return h(
    "div",
    { class: "alert-inline neutral waiting-for", dataset: { testid: "detail-waiting-for" } },
    h("span", { class: "waiting-label" }, "Waiting for "),
    h("span", { dataset: { testid: "detail-waiting-for-text" } }, job.waiting_for),
  );
}

/** The same, as a line under the status in the job's row of the list (its tooltip says it whole). */
export function waitingCaption(job) {
  if (job.status !== "PENDING" || !job.waiting_for) return null;
  return h(
    "div",
    { class: "waiting-caption", title: `Waiting for: ${job.waiting_for}`, dataset: { testid: "row-waiting" } },
    job.waiting_for,
  );
}
