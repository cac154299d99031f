// The detail panel of one job: its steps (status, progress, waiting time, duration, error), each step's log
// tail and download, the job's history, and links to its tasks in Flower.

import { api } from "./api.js";
import {
  actionButtons,
  formatDuration,
  h,
  progressBar,
  setProgress,
  shortId,
  statusBadge,
  targetText,
  timeCell,
} from "./format.js";

const LOG_TAIL = 200;
const LOG_REFRESH_MS = 2000;

export class Detail {
  /**
   * `canOperate(project)`: whether to offer operations; `onAction(job, action, button)`: run one;
   * `onError(error, context)`: report a failure; `flowerUrl()`: Flower's base URL or null.
   */
  constructor({ root, canOperate, onAction, onError, flowerUrl, onClose }) {
    this.root = root;
    this.canOperate = canOperate;
    this.onAction = onAction;
    this.onError = onError;
    this.flowerUrl = flowerUrl;
    this.onClose = onClose;
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
        job.error ? h("div", { class: "alert-inline", dataset: { testid: "detail-error" } }, job.error) : null,
        job.discard_reason
          ? h(
              "div",
              { class: "alert-inline neutral", dataset: { testid: "detail-discard-reason" } },
              `Discarded: ${job.discard_reason}`,
            )
          : null,
        this.renderMeta(job),
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
  }

  renderActions(job) {
    const buttons = this.canOperate(job.project)
      ? actionButtons(job, (action, button) => this.onAction(job, action, button), {
          testid: (action) => `detail-action-${action.name}`,
        })
      : [];
    const flower = this.flowerUrl();
    return h(
      "div",
      { class: "drawer-actions" },
      buttons,
      h("span", { class: "spacer" }),
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
      step.error ? h("div", { class: "alert-inline step-error", dataset: { testid: "step-error" } }, step.error) : null,
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
                h("td", { class: "reason" }, event.reason || ""),
              ),
            ),
          ),
        ),
      ),
    );
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
