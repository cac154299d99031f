// The detail panel of one job: its steps (status, progress, waiting time, duration, error), each step's log
// tail and download, the job's history, links to its tasks in Flower, its params (edited here while it is
// stopped) and its diagnostic bundle to download.

import { api } from "./api.js";
import {
  actionButtons,
  EDITABLE,
  formatDuration,
  h,
  progressBar,
  setProgress,
  shortId,
  statusBadge,
  targetText,
  timeCell,
} from "./format.js";
import { jobError, stepError, stepInfo, waitingFor } from "./diagnosis.js";
import { showMessage } from "./notify.js";

const LOG_TAIL = 200;
const LOG_REFRESH_MS = 2000;

export class Detail {
  /**
   * `canOperate(project)`: whether to offer operations; `onAction(job, action, button)`: run one;
   * `onError(error, context)`: report a failure; `flowerUrl()`: Flower's base URL or null;
   * `onUpdated(job)`: the panel changed the job (its params) and has it as the server answered.
   */
  constructor({ root, canOperate, onAction, onError, flowerUrl, onClose, onUpdated }) {
    this.root = root;
    this.canOperate = canOperate;
    this.onAction = onAction;
    this.onError = onError;
    this.flowerUrl = flowerUrl;
    this.onClose = onClose;
    this.onUpdated = onUpdated || (() => {});
    this.editing = null; // while the params are edited: {text, error, saving}
    this.job = null;
    this.fetchedAt = 0;
    this.openLogs = new Set();
    this.logs = new Map(); // step index -> text
    this.history = null;
    this.logTimer = null;
    this.returnFocus = null;
  }

  get jobId() {
    return this.job ? this.job.id : null;
  }

  /** Open the panel on `job` (a job from the list; the full job is fetched right away). */
  async open(job, returnFocus) {
    const same = this.job && this.job.id === job.id;
    if (!same) {
      this.openLogs = new Set();
      this.logs = new Map();
      this.history = null;
      this.editing = null;
    }
    this.returnFocus = returnFocus || null;
    this.job = job;
    this.fetchedAt = Date.now();
    this.render();
    this.root.hidden = false;
    this.root.focus();
    this.startLogTimer();
    try {
      this.update(await api.job(job.id));
    } catch (error) {
      this.onError(error, `Could not load job ${shortId(job.id)}`);
    }
  }

  close() {
    if (!this.job) return;
    this.job = null;
    this.root.hidden = true;
    this.root.replaceChildren();
    clearInterval(this.logTimer);
    this.logTimer = null;
    if (this.onClose) this.onClose();
    if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
  }

  /** The job changed (fetched again): show it, and reload the history if its status moved. */
  update(job) {
    if (!this.job || job.id !== this.job.id) return;
    const statusChanged = job.status !== this.job.status || this.history === null;
    if (this.editing && !this.editable(job)) {
      this.editing = null; // it moved on: nothing to edit any more
      const title = `Job ${shortId(job.id)} is ${job.status} now: params are edited while ${EDITABLE.join(" or ")}.`;
      showMessage({ kind: "info", title });
    }
    this.job = job;
    this.fetchedAt = Date.now();
    this.render();
    if (statusChanged) this.loadHistory();
    for (const index of this.openLogs) this.loadLog(index);
  }

  /** A live event for this job that did not change its status: move the progress bars. */
  progress(message) {
    if (!this.job || message.id !== this.job.id) return;
    const bar = this.root.querySelector('[data-testid="detail-progress"]');
    if (bar && message.progress !== null) setProgress(bar, message.progress);
    const step = message.step;
    if (!step) return;
    const item = this.root.querySelector(`[data-testid="step"][data-index="${step.index}"]`);
    if (!item || item.dataset.status !== step.status) return; // a step status change comes with a refetch
    setProgress(item.querySelector('[data-testid="step-progress"]'), step.progress);
    const known = this.job.steps.find((s) => s.index === step.index);
    if (known) known.progress = step.progress;
  }

  /** Once a second: running durations grow without asking the server. */
  tick() {
    if (!this.job) return;
    const elapsed = (Date.now() - this.fetchedAt) / 1000;
    if (this.job.status === "RUNNING") {
      const cell = this.root.querySelector('[data-testid="detail-duration"]');
      if (cell) cell.textContent = formatDuration(this.job.duration_s + elapsed);
    }
    for (const step of this.job.steps) {
      if (step.status !== "RUNNING") continue;
      const cell = this.root.querySelector(
        `[data-testid="step"][data-index="${step.index}"] [data-testid="step-duration"]`,
      );
      if (cell) cell.textContent = formatDuration(step.duration_s + elapsed);
    }
  }

  // ------------------------------------------------------------------------------------------- rendering

  render() {
    const job = this.job;
    const scroll = this.root.scrollTop;
    const typing = document.activeElement;
    const caret =
      typing && typing.dataset && typing.dataset.testid === "edit-params-text" && this.root.contains(typing)
        ? [typing.selectionStart, typing.selectionEnd]
        : null;
    const close = h(
      "button",
      {
        type: "button",
        class: "btn btn-ghost",
        "aria-label": "Close job details",
        dataset: { testid: "detail-close" },
      },
      "\u2715",
    );
    close.addEventListener("click", () => this.close());
    this.root.replaceChildren(
      h(
        "div",
        { class: "drawer-head" },
        h(
          "h2",
          { id: "detail-title" },
          "Job ",
          h("span", { class: "mono", dataset: { testid: "detail-id" } }, shortId(job.id)),
        ),
        statusBadge(job.status, "detail-status"),
        close,
      ),
      h(
        "div",
        { class: "drawer-body" },
        this.renderActions(job),
        progressBar(job.progress, job.status, "detail-progress"),
        jobError(job),
        waitingFor(job),
        job.discard_reason
          ? h(
              "div",
              { class: "alert-inline neutral", dataset: { testid: "detail-discard-reason" } },
              `Discarded: ${job.discard_reason}`,
            )
          : null,
        this.renderMeta(job),
        this.renderParams(job),
        job.result
          ? h(
              "section",
              {},
              h("h3", {}, "Result"),
              h("pre", { class: "result", dataset: { testid: "detail-result" } }, JSON.stringify(job.result, null, 2)),
            )
          : null,
        h(
          "section",
          { "aria-labelledby": "steps-title" },
          h("h3", { id: "steps-title", style: { marginBottom: "8px" } }, `Steps (${job.steps.length})`),
          h(
            "ol",
            { class: "steps", dataset: { testid: "steps" } },
            job.steps.map((step) => this.renderStep(job, step)),
          ),
        ),
        this.renderHistory(),
      ),
    );
    this.root.scrollTop = scroll;
    if (caret) {
      const area = this.root.querySelector('[data-testid="edit-params-text"]');
      if (area) {
        area.focus();
        area.setSelectionRange(...caret);
      }
    }
  }

  renderActions(job) {
    const buttons = this.canOperate(job.project)
      ? actionButtons(job, (action, button) => this.onAction(job, action, button), {
          testid: (action) => `detail-action-${action.name}`,
        })
      : [];
    const flower = this.flowerUrl();
    const diagnostics = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm",
        title: "A zip of the job, its events and logs, its type, its workers and the server's settings (no secrets)",
        dataset: { testid: "detail-diagnostics" },
      },
      "Download diagnostics",
    );
    diagnostics.addEventListener("click", () => this.downloadDiagnostics(job, diagnostics));
    return h(
      "div",
      { class: "drawer-actions" },
      buttons,
      h("span", { class: "spacer" }),
      diagnostics,
      flower
        ? h(
            "a",
            {
              href: `${flower}/tasks?search=${encodeURIComponent(job.id)}`,
              target: "_blank",
              rel: "noopener noreferrer",
              dataset: { testid: "flower-link" },
              title: "Flower lists the job's step tasks; search them by this job's id",
            },
            "Tasks in Flower \u2197",
          )
        : null,
    );
  }

  renderMeta(job) {
    const row = (label, value, testid) => [h("dt", {}, label), h("dd", { dataset: testid ? { testid } : {} }, value)];
    const target = job.target
      ? `${targetText(job.target)}${job.target.version ? ` (version ${job.target.version})` : ""}`
      : "\u2014";
    return h(
      "dl",
      { class: "meta", dataset: { testid: "detail-meta" } },
      row("Job id", h("span", { class: "mono" }, job.id), "detail-full-id"),
      row("Project", job.project, "detail-project"),
      row("Type", job.type, "detail-type"),
      row("Target", target, "detail-target"),
      row("Priority", String(job.priority)),
      row("Submitted by", job.submitter),
      row("Created", timeCell(job.created_at, true)),
      row("Started", timeCell(job.started_at, true)),
      row("Finished", timeCell(job.finished_at, true)),
      row("Waiting", formatDuration(job.waiting_s), "detail-waiting"),
      row("Duration", formatDuration(job.duration_s), "detail-duration"),
      row("Attempt", String(job.attempt)),
    );
  }

  renderStep(job, step) {
    const open = this.openLogs.has(step.index);
    const logId = `log-${step.index}`;
    const toggle = h(
      "button",
      {
        type: "button",
        class: "btn btn-sm",
        "aria-expanded": open ? "true" : "false",
        "aria-controls": logId,
        dataset: { testid: "step-log-toggle" },
      },
      open ? "Hide log" : "Show log",
    );
    toggle.addEventListener("click", () => this.toggleLog(step.index));
    const download = h(
      "button",
      { type: "button", class: "btn btn-sm", dataset: { testid: "step-log-download" } },
      "Download log",
    );
    download.addEventListener("click", () => this.downloadLog(job, step, download));
    const task = step.task_id || step.fence;
    const flower = this.flowerUrl();
    const text = this.logs.get(step.index);
    return h(
      "li",
      { class: "step", dataset: { testid: "step", index: String(step.index), status: step.status } },
      h(
        "div",
        { class: "step-head" },
        h(
          "span",
          { class: "step-name", dataset: { testid: "step-name" } },
          h("span", { class: "step-index" }, `${step.index + 1}.`),
          step.name,
        ),
        statusBadge(step.status, "step-status"),
      ),
      progressBar(step.progress, step.status, "step-progress"),
      h(
        "div",
        { class: "step-times" },
        h("span", {}, "Waiting ", h("b", { dataset: { testid: "step-waiting" } }, formatDuration(step.waiting_s))),
        h("span", {}, "Duration ", h("b", { dataset: { testid: "step-duration" } }, formatDuration(step.duration_s))),
        h("span", {}, "Started ", h("b", {}, timeCell(step.started_at))),
        step.attempt > 1 ? h("span", {}, "Attempt ", h("b", {}, String(step.attempt))) : null,
      ),
      stepError(step.error),
      stepInfo(step.info),
      h(
        "div",
        { class: "step-tools" },
        toggle,
        download,
        task && flower
          ? h(
              "a",
              {
                href: `${flower}/task/${encodeURIComponent(task)}`,
                target: "_blank",
                rel: "noopener noreferrer",
                dataset: { testid: "step-flower-link" },
              },
              "Task in Flower \u2197",
            )
          : null,
      ),
      h(
        "pre",
        {
          id: logId,
          class: `log${text === "" ? " log-empty" : ""}`,
          hidden: !open,
          dataset: { testid: "step-log" },
          tabindex: "0",
        },
        text === undefined ? "Loading\u2026" : text || "No log lines yet.",
      ),
    );
  }

  renderHistory() {
    if (!this.history) return null;
    return h(
      "section",
      { "aria-labelledby": "history-title" },
      h("h3", { id: "history-title", style: { marginBottom: "8px" } }, "History"),
      h(
        "div",
        { class: "history-wrap" },
        h(
          "table",
          { class: "history", dataset: { testid: "history" } },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Time", "By", "Action", "Change", "Reason"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            this.history.map((event) =>
              h(
                "tr",
                {},
                h("td", {}, timeCell(event.at)),
                h("td", {}, event.actor),
                h("td", {}, event.action),
                h("td", {}, `${event.from || "\u2014"} \u2192 ${event.to || "\u2014"}`),
                h("td", { class: "reason" }, event.reason || "", this.renderChanges(event)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  /** An `edit` event's changes, one line per changed param (`seconds: 1 → 2`); null for other events. */
  renderChanges(event) {
    const details = event.details;
    if (!details || typeof details.old !== "object" || typeof details.new !== "object") return null;
    const keys = [...new Set([...Object.keys(details.old || {}), ...Object.keys(details.new || {})])].sort();
    const show = (value) => (value === undefined ? "\u2014" : JSON.stringify(value));
    const changed = keys.filter((key) => show(details.old[key]) !== show(details.new[key]));
    if (!changed.length) return null;
    return h(
      "ul",
      { class: "changes", dataset: { testid: "history-changes" } },
      changed.map((key) => h("li", {}, `${key}: ${show(details.old[key])} \u2192 ${show(details.new[key])}`)),
    );
  }

  // --------------------------------------------------------------------------------------------- params

  /** Whether the panel offers to edit the job's params: the server's editable states, and the operator role. */
  editable(job) {
    return EDITABLE.includes(job.status) && this.canOperate(job.project);
  }

  renderParams(job) {
    const head = h("h3", { id: "params-title" }, "Params");
    if (!this.editing) {
      const edit = this.editable(job)
        ? h("button", { type: "button", class: "btn btn-sm", dataset: { testid: "edit-params" } }, "Edit params")
        : null;
      if (edit) edit.addEventListener("click", () => this.startEdit());
      return h(
        "section",
        { "aria-labelledby": "params-title" },
        h("div", { class: "section-head" }, head, edit),
        h("pre", { class: "result", dataset: { testid: "detail-params" } }, JSON.stringify(job.params, null, 2)),
      );
    }
    const editing = this.editing;
    const area = h("textarea", {
      id: "edit-params-text",
      class: "params-text mono",
      rows: "10",
      spellcheck: "false",
      "aria-describedby": "edit-params-note",
      "aria-invalid": editing.error ? "true" : "false",
      dataset: { testid: "edit-params-text" },
    });
    area.value = editing.text;
    area.addEventListener("input", () => {
      editing.text = area.value;
    });
    const save = h(
      "button",
      {
        type: "submit",
        class: "btn btn-primary btn-sm",
        disabled: editing.saving,
        dataset: { testid: "edit-params-save" },
      },
      editing.saving ? "Saving\u2026" : "Save params",
    );
    const cancel = h(
      "button",
      { type: "button", class: "btn btn-sm", dataset: { testid: "edit-params-cancel" } },
      "Cancel",
    );
    cancel.addEventListener("click", () => {
      this.editing = null;
      this.render();
    });
    const form = h(
      "form",
      { class: "params-form", dataset: { testid: "edit-params-form" }, novalidate: true },
      h("label", { for: "edit-params-text" }, "The job's params, as a JSON object"),
      area,
      editing.error
        ? h("p", { class: "form-error", role: "alert", dataset: { testid: "edit-params-error" } }, editing.error)
        : null,
      h(
        "p",
        { id: "edit-params-note", class: "form-error form-note" },
        "The job type checks them as at submission. Once saved, resume the job: its unfinished steps run with " +
          "the new params, its finished steps keep their outputs.",
      ),
      h("div", { class: "form-actions" }, save, cancel),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveParams();
    });
    return h("section", { "aria-labelledby": "params-title" }, h("div", { class: "section-head" }, head), form);
  }

  startEdit() {
    this.editing = { text: JSON.stringify(this.job.params, null, 2), error: "", saving: false };
    this.render();
    const area = this.root.querySelector('[data-testid="edit-params-text"]');
    if (area) area.focus();
  }

  /** Send the edited params; the server validates them, and its refusal is shown as text under the field. */
  async saveParams() {
    const job = this.job;
    const editing = this.editing;
    if (!job || !editing || editing.saving) return;
    let params;
    try {
      params = JSON.parse(editing.text);
    } catch (error) {
      editing.error = `This is not valid JSON: ${error.message}`;
      this.render();
      return;
    }
    if (params === null || typeof params !== "object" || Array.isArray(params)) {
      editing.error = "The params must be a JSON object, such as {\"steps\": 3}.";
      this.render();
      return;
    }
    editing.saving = true;
    editing.error = "";
    this.render();
    try {
      const changed = await api.editParams(job.id, params);
      if (this.editing === editing) this.editing = null;
      this.onUpdated(changed); // the list's row, and this panel (`update`)
      this.update(changed);
      this.loadHistory(); // the edit is in it now, though the status did not change
      showMessage({
        kind: "success",
        title: `Saved the params of job ${shortId(job.id)}.`,
        text: "Resume it to run its unfinished steps with them.",
      });
    } catch (error) {
      editing.saving = false;
      const title = `Could not save the params of job ${shortId(job.id)}`;
      if (error.status === 409) {
        // the job moved on (it is no longer stopped): say so, and show it as it is now
        const allowed = error.body?.error?.allowed ?? error.body?.allowed;
        const now = allowed && allowed.length ? ` Allowed now: ${allowed.join(", ")}.` : "";
        if (this.editing === editing) this.editing = null;
        showMessage({ kind: "error", title, text: `${error.message}.${now}` });
        this.refresh();
        return;
      }
      if (error.status === 401 || error.status === 404) {
        if (this.editing === editing) this.editing = null;
        this.onError(error, title); // signed out, or the job is gone
        if (this.job) this.render();
        return;
      }
      editing.error = error.message; // a 422: the job type's own words, what to fix; else what went wrong
      if (this.editing === editing) this.render();
    }
  }

  /** Read the job again and show it (after a refusal: its state moved on). */
  async refresh() {
    const job = this.job;
    if (!job) return;
    try {
      const fresh = await api.job(job.id);
      this.onUpdated(fresh);
      this.update(fresh);
    } catch (error) {
      this.onError(error, `Could not load job ${shortId(job.id)}`);
    }
  }

  // ---------------------------------------------------------------------------------------- logs, history

  toggleLog(index) {
    if (this.openLogs.has(index)) this.openLogs.delete(index);
    else this.openLogs.add(index);
    this.render();
    if (this.openLogs.has(index)) this.loadLog(index);
  }

  async loadLog(index) {
    const job = this.job;
    if (!job) return;
    try {
      const text = await api.log(job.id, index, LOG_TAIL);
      if (!this.job || this.job.id !== job.id) return;
      this.logs.set(index, text.replace(/\n$/, ""));
      const pre = this.root.querySelector(`[data-testid="step"][data-index="${index}"] [data-testid="step-log"]`);
      if (!pre) return;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      const value = this.logs.get(index);
      pre.textContent = value || "No log lines yet.";
      pre.classList.toggle("log-empty", !value);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    } catch (error) {
      this.onError(error, `Could not load the log of step ${index + 1}`);
    }
  }

  async downloadLog(job, step, button) {
    button.disabled = true;
    try {
      const blob = await api.logBlob(job.id, step.index);
      const url = URL.createObjectURL(blob);
      const link = h("a", {
        href: url,
        download: `job-${job.id}-step-${step.index + 1}-${step.name}.log`,
        hidden: true,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      this.onError(error, `Could not download the log of step ${step.index + 1}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Fetch the job's diagnostic bundle with the token in the header (never in a URL), then save it. */
  async downloadDiagnostics(job, button) {
    button.disabled = true;
    try {
      const blob = await api.diagnostics(job.id);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: `job-${job.id}-diagnostics.zip`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      this.onError(error, `Could not download the diagnostics of job ${shortId(job.id)}`);
    } finally {
      button.disabled = false;
    }
  }

  async loadHistory() {
    const job = this.job;
    try {
      const history = await api.events(job.id);
      if (!this.job || this.job.id !== job.id) return;
      this.history = history;
      this.render();
    } catch (error) {
      if (error.status !== 404) this.onError(error, `Could not load the history of job ${shortId(job.id)}`);
    }
  }

  startLogTimer() {
    clearInterval(this.logTimer);
    this.logTimer = setInterval(() => {
      if (!this.job) return;
      for (const index of this.openLogs) {
        const step = this.job.steps.find((s) => s.index === index);
        if (step && step.status === "RUNNING") this.loadLog(index);
      }
    }, LOG_REFRESH_MS);
  }
}
