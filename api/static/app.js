// jobctl web monitor: sign-in, the job list (filters, sorting, paging, per-row and batch operations), live
// updates over Server-Sent Events and the detail panel. Plain ES modules, no build step.

import { api, clearToken, getToken, setToken, uiConfig } from "./api.js";
import { Dashboard } from "./dashboard.js";
import { Detail } from "./detail.js";
import { waitingCaption } from "./diagnosis.js";
import {
  ACTIONS,
  actionButtons,
  capitalized,
  formatDuration,
  h,
  progressBar,
  setProgress,
  shortId,
  SORTS,
  STATUSES,
  statusBadge,
  targetText,
  timeCell,
  useConfig,
} from "./format.js";
import { LiveStream } from "./live.js";
import { clearMessages, confirmAction, showMessage } from "./notify.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

/** What the confirmation says before an irreversible operation (the server's config says which those are). */
const IRREVERSIBLE = {
  discard:
    "Discarded jobs stop at once and release their resources. " +
    "They cannot be resumed or restarted: this cannot be undone.",
  delete: "Deleting removes the jobs with their steps, logs and history. This cannot be undone.",
};
const NEW_JOB_RELOAD_MS = 700;

/**
 * The table's columns; `sort` names the API's sort key that orders the column (sortable only if the server lists
 * it), `first` the direction of a first click.
 */
const COLUMNS = [
  { key: "select", label: "" },
  { key: "id", label: "Job" },
  { key: "status", label: "Status", sort: "status", first: "" },
  { key: "type", label: "Type", sort: "type", first: "" },
  { key: "target", label: "Target" },
  { key: "project", label: "Project", sort: "project", first: "", allOnly: true },
  { key: "progress", label: "Progress" },
  { key: "created", label: "Created", sort: "created_at", first: "-" },
  { key: "started", label: "Started" },
  { key: "duration", label: "Duration", sort: "duration", first: "-" },
  { key: "actions", label: "Actions" },
];

const freshView = () => ({
  project: "",
  statuses: [],
  type: "",
  errorCode: "",
  period: "all",
  q: "",
  sort: "-created_at",
  page: 1,
  pageSize: Number($("page-size").value) || 20,
});

const state = {
  me: null,
  projects: [],
  flowerUrl: null,
  types: [], // the job types the server knows (GET /types), offered in the type filter
  view: null,
  jobs: new Map(), // id -> job, this page's
  rows: new Map(), // id -> <tr>
  fetchedAt: new Map(), // id -> Date.now() when the job was fetched (running durations grow from there)
  total: 0,
  selected: new Set(),
  matching: false, // the selection is every job matching the filters, not only this page's (a batch by filter)
  live: null,
  loadSeq: 0,
  listController: null,
  reloadTimer: null,
  refetching: new Map(),
  pendingProgress: new Map(),
  progressFrame: 0,
};

const allMode = () => Boolean(state.me && state.me.admin && state.view.project === "");
const canOperate = (project) => Boolean(state.me && (state.me.admin || state.me.roles[project] === "operator"));

const detail = new Detail({
  root: $("detail"),
  canOperate,
  onAction: (job, action, button) => runAction(job, action, button),
  onError: (error, context) => reportError(error, context),
  flowerUrl: () => state.flowerUrl,
  onClose: () => markOpenRow(),
  onUpdated: (job) => updateJob(job),
});

const dashboard = new Dashboard({ root: $("dashboard"), onError: (error, context) => reportError(error, context) });

// ------------------------------------------------------------------------------------------- sign-in

function showSignIn(message, kind = "error") {
  $("monitor").hidden = true;
  $("user").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.textContent = message || "";
  error.hidden = !message;
  error.classList.toggle("form-note", kind !== "error");
  $("token-input").value = "";
  $("token-input").focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token-input").value.trim();
  const error = $("signin-error");
  error.classList.remove("form-note");
  if (!token) {
    error.textContent = "Enter your API token.";
    error.hidden = false;
    return;
  }
  const button = $("sign-in");
  button.disabled = true;
  setToken(token);
  try {
    await start();
  } catch (failure) {
    clearToken();
    error.textContent =
      failure.status === 401
        ? "This token is not valid. Check it and try again."
        : `Could not sign in: ${failure.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function signOut(message, kind = "error") {
  clearToken();
  if (state.live) state.live.stop();
  state.live = null;
  detail.close();
  clearMessages();
  state.me = null;
  state.jobs.clear();
  state.rows.clear();
  state.selected.clear();
  $("jobs-table").tBodies[0].replaceChildren();
  dashboard.stop();
  showSignIn(message, kind);
}

/** After a valid token: who the user is, their projects, then the list and the live stream. */
async function start() {
  const me = await api.me();
  const [projects, config, types] = await Promise.all([api.projects(), uiConfig(), api.types().catch(() => [])]);
  useConfig(config);
  state.me = me;
  state.projects = projects.map((p) => p.name);
  state.types = types.map((t) => t.name);
  state.flowerUrl = config.flower_url || null;
  state.view = freshView();
  if (!me.admin) state.view.project = state.projects[0] || "";

  $("signin").hidden = true;
  $("monitor").hidden = false;
  $("user").hidden = false;
  $("user-name").textContent = me.name;
  $("user-role").textContent = me.admin ? "admin" : roleSummary(me.roles);
  renderProjectSelect();
  renderStatusChips();
  syncFilterInputs();
  renderHead();
  dashboard.start(); // the view the address names: the list, or `#dashboard`
  if (!me.admin && !state.projects.length) {
    renderEmpty("You have no role in any project yet.", "Ask an administrator to give you a role in a project.");
    $("pager").hidden = true;
    return;
  }
  await loadJobs();
  startLive();
}

function roleSummary(roles) {
  const values = new Set(Object.values(roles));
  if (values.has("operator")) return values.size > 1 ? "operator / viewer" : "operator";
  return values.has("viewer") ? "viewer" : "no projects";
}

// -------------------------------------------------------------------------------------------- filters

function renderProjectSelect() {
  const select = $("filter-project");
  const options = state.projects.map((name) => h("option", { value: name }, name));
  if (state.me.admin) options.unshift(h("option", { value: "" }, "All projects"));
  select.replaceChildren(...options);
  select.value = state.view.project;
  select.disabled = !state.me.admin && state.projects.length < 2;
}

function renderStatusChips() {
  const box = $("filter-status");
  box.replaceChildren(
    ...STATUSES.map((status) => {
      const chip = h(
        "button",
        {
          type: "button",
          class: "chip",
          "aria-pressed": "false",
          dataset: { testid: `filter-status-${status}`, status },
        },
        h("span", { class: `chip-dot chip-dot-${status.toLowerCase()}`, "aria-hidden": "true" }),
        capitalized(status),
      );
      chip.addEventListener("click", () => {
        const on = !state.view.statuses.includes(status);
        state.view.statuses = on ? [...state.view.statuses, status] : state.view.statuses.filter((s) => s !== status);
        syncFilterInputs();
        viewChanged();
      });
      return chip;
    }),
  );
}

/** Make the filter controls show `state.view`. */
function syncFilterInputs() {
  $("filter-project").value = state.view.project;
  $("filter-period").value = state.view.period;
  $("filter-type").value = state.view.type;
  $("filter-error-code").value = state.view.errorCode;
  $("filter-q").value = state.view.q;
  $("page-size").value = String(state.view.pageSize);
  for (const chip of $("filter-status").children) {
    const on = state.view.statuses.includes(chip.dataset.status);
    chip.setAttribute("aria-pressed", on ? "true" : "false");
  }
}

/** Filters, project or page size changed: back to page 1, selection cleared, list reloaded. */
function viewChanged({ projectChanged = false } = {}) {
  state.view.page = 1;
  state.selected.clear();
  state.matching = false;
  if (projectChanged) {
    renderHead();
    startLive();
  }
  loadJobs();
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function wireFilters() {
  $("filter-project").addEventListener("change", (event) => {
    state.view.project = event.target.value;
    viewChanged({ projectChanged: true });
  });
  $("filter-period").addEventListener("change", (event) => {
    state.view.period = event.target.value;
    viewChanged();
  });
  const typed = debounce(() => {
    const value = $("filter-type").value.trim();
    if (value !== state.view.type) {
      state.view.type = value;
      viewChanged();
    }
  }, 350);
  $("filter-type").addEventListener("input", typed);
  const coded = debounce(() => {
    const value = $("filter-error-code").value.trim();
    if (value !== state.view.errorCode) {
      state.view.errorCode = value;
      viewChanged();
    }
  }, 350);
  $("filter-error-code").addEventListener("input", coded);
  const searched = debounce(() => {
    const value = $("filter-q").value.trim();
    if (value !== state.view.q) {
      state.view.q = value;
      viewChanged();
    }
  }, 350);
  $("filter-q").addEventListener("input", searched);
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-clear").addEventListener("click", () => {
    const project = state.view.project;
    state.view = { ...freshView(), project, pageSize: state.view.pageSize };
    syncFilterInputs();
    viewChanged();
  });
  $("page-size").addEventListener("change", (event) => {
    state.view.pageSize = Number(event.target.value);
    viewChanged();
  });
  $("page-prev").addEventListener("click", () => goToPage(state.view.page - 1));
  $("page-next").addEventListener("click", () => goToPage(state.view.page + 1));
  $("refresh").addEventListener("click", async () => {
    const button = $("refresh");
    button.disabled = true;
    try {
      await loadJobs();
      if (detail.jobId) refetchJob(detail.jobId);
    } finally {
      button.disabled = false;
    }
  });
}

function goToPage(page) {
  const last = Math.max(1, Math.ceil(state.total / state.view.pageSize));
  state.view.page = Math.min(Math.max(1, page), last);
  state.selected.clear();
  state.matching = false;
  loadJobs();
}

// ----------------------------------------------------------------------------------------------- list

function listParams() {
  const view = state.view;
  return {
    project: view.project || undefined,
    status: view.statuses,
    type: view.type,
    error_code: view.errorCode,
    q: view.q,
    period: view.period === "all" ? undefined : view.period,
    sort: view.sort,
    page: view.page,
    page_size: view.pageSize,
  };
}

/** Load the current page of jobs and show it; a newer load supersedes an older one still under way. */
async function loadJobs() {
  const seq = ++state.loadSeq;
  if (state.listController) state.listController.abort();
  const controller = new AbortController();
  state.listController = controller;
  const table = $("jobs-table");
  table.setAttribute("aria-busy", "true");
  try {
    const page = await api.jobs(listParams(), controller.signal);
    if (seq !== state.loadSeq) return;
    const last = Math.max(1, Math.ceil(page.total / state.view.pageSize));
    if (!page.items.length && state.view.page > last) {
      state.view.page = last;
      await loadJobs();
      return;
    }
    renderJobs(page);
  } catch (error) {
    if (error.name === "AbortError") return;
    reportError(error, "Could not load the jobs");
  } finally {
    if (seq === state.loadSeq) table.removeAttribute("aria-busy");
  }
}

function renderHead() {
  const head = $("jobs-table").tHead;
  const cells = visibleColumns().map((column) => {
    if (column.key === "select") {
      const all = h("input", {
        type: "checkbox",
        "aria-label": "Select all jobs on this page",
        dataset: { testid: "select-all" },
      });
      all.addEventListener("change", () => selectAll(all.checked));
      return h("th", { class: "col-select", scope: "col" }, all);
    }
    if (!SORTS.includes(column.sort)) return h("th", { scope: "col", class: `col-${column.key}` }, column.label);
    const current = state.view.sort.replace(/^-/, "");
    const descending = state.view.sort.startsWith("-");
    const active = current === column.sort;
    const button = h(
      "button",
      { type: "button", class: "sort", dataset: { testid: `sort-${column.sort}` } },
      column.label,
      h(
        "span",
        { class: "sort-icon", "aria-hidden": "true" },
        active ? (descending ? "\u25BC" : "\u25B2") : "\u25B4\u25BE",
      ),
    );
    button.addEventListener("click", () => {
      state.view.sort = active ? (descending ? column.sort : `-${column.sort}`) : `${column.first}${column.sort}`;
      state.view.page = 1;
      renderHead();
      loadJobs();
    });
    return h(
      "th",
      {
        scope: "col",
        class: `col-${column.key}`,
        "aria-sort": active ? (descending ? "descending" : "ascending") : "none",
      },
      button,
    );
  });
  head.replaceChildren(h("tr", {}, cells));
  updateSelectAll();
}

function visibleColumns() {
  return COLUMNS.filter((column) => !column.allOnly || allMode());
}

function renderJobs(page) {
  state.total = page.total;
  state.jobs = new Map(page.items.map((job) => [job.id, job]));
  state.rows = new Map();
  const now = Date.now();
  for (const job of page.items) state.fetchedAt.set(job.id, now);
  for (const id of [...state.selected]) if (!state.jobs.has(id)) state.selected.delete(id);
  const body = $("jobs-table").tBodies[0];
  body.replaceChildren(...page.items.map((job) => renderRow(job)));
  const types = new Set([...state.types, ...page.items.map((job) => job.type)]);
  document
    .getElementById("f-type-list")
    .replaceChildren(...[...types].sort().map((type) => h("option", { value: type })));
  if (!page.items.length) {
    const filtered =
      state.view.statuses.length ||
      state.view.type ||
      state.view.errorCode ||
      state.view.q ||
      state.view.period !== "all";
    renderEmpty(
      filtered ? "No jobs match these filters." : "No jobs yet.",
      filtered ? "Change or clear the filters to see more." : "Jobs submitted to this project will appear here.",
    );
  } else {
    $("empty").hidden = true;
  }
  $("table-wrap").hidden = !page.items.length;
  renderPager();
  updateBatchBar();
  updateSelectAll();
  markOpenRow();
}

function renderEmpty(title, text) {
  const empty = $("empty");
  empty.replaceChildren(h("strong", {}, title), text);
  empty.hidden = false;
  $("table-wrap").hidden = true;
}

function renderPager() {
  const { page, pageSize } = state.view;
  const total = state.total;
  const last = Math.max(1, Math.ceil(total / pageSize));
  const first = total ? (page - 1) * pageSize + 1 : 0;
  const end = Math.min(total, page * pageSize);
  $("pager").hidden = false;
  $("pager-info").textContent = total ? `${first}\u2013${end} of ${total} jobs` : "0 jobs";
  $("page-number").textContent = `Page ${page} of ${last}`;
  $("page-prev").disabled = page <= 1;
  $("page-next").disabled = page >= last;
}

function stepCaption(job) {
  const steps = job.steps || [];
  if (!steps.length) return "";
  const done = steps.filter((s) => s.status === "FINISHED").length;
  if (done === steps.length) return `${steps.length}/${steps.length} steps`;
  const current = steps.find((s) => s.status !== "FINISHED");
  return `Step ${current.index + 1}/${steps.length} \u00B7 ${current.name}`;
}

function renderRow(job) {
  const operable = canOperate(job.project);
  const selected = state.selected.has(job.id);
  const tr = h("tr", {
    class: selected ? "selected" : "",
    dataset: { testid: "job-row", jobId: job.id, status: job.status },
  });
  const cells = {};
  cells.select = () => {
    const box = h("input", {
      type: "checkbox",
      checked: selected,
      disabled: !operable,
      "aria-label": `Select job ${shortId(job.id)}`,
      dataset: { testid: "row-select" },
    });
    box.addEventListener("change", () => toggleSelected(job.id, box.checked));
    return h("td", { class: "col-select" }, box);
  };
  cells.id = () => {
    const open = h(
      "button",
      { type: "button", class: "link mono", title: `Show job ${job.id}`, dataset: { testid: "row-open" } },
      shortId(job.id),
    );
    open.addEventListener("click", () => {
      detail.open(job, open).then(markOpenRow);
      markOpenRow();
    });
    return h("td", { class: "col-id" }, open);
  };
  cells.status = () => h("td", {}, statusBadge(job.status, "row-status"), waitingCaption(job));
  cells.type = () => h("td", { dataset: { testid: "row-type" } }, job.type);
  cells.target = () => {
    if (!job.target) return h("td", { dataset: { testid: "row-target" } }, h("span", { class: "muted" }, "\u2014"));
    return h(
      "td",
      { title: targetText(job.target), dataset: { testid: "row-target" } },
      h(
        "div",
        { class: "target" },
        h("span", { class: "target-name" }, job.target.name),
        h("span", { class: "target-kind" }, job.target.kind),
      ),
    );
  };
  cells.project = () => h("td", { dataset: { testid: "row-project" } }, job.project);
  cells.progress = () =>
    h(
      "td",
      { class: "col-progress" },
      progressBar(job.progress, job.status, "row-progress"),
      h("div", { class: "step-caption", dataset: { testid: "row-step" } }, stepCaption(job)),
    );
  cells.created = () => h("td", { class: "col-time" }, timeCell(job.created_at));
  cells.started = () => h("td", { class: "col-time" }, timeCell(job.started_at));
  cells.duration = () =>
    h("td", { class: "col-duration", dataset: { testid: "row-duration" } }, formatDuration(job.duration_s));
  cells.actions = () => {
    const buttons = operable
      ? actionButtons(job, (action, button) => runAction(job, action, button), {
          testid: (action) => `action-${action.name}`,
          label: (action) => `${action.label} job ${shortId(job.id)}`,
        })
      : [];
    return h(
      "td",
      { class: "col-actions" },
      h("div", { class: "row-actions" }, buttons.length ? buttons : h("span", { class: "muted" }, "\u2014")),
    );
  };
  for (const column of visibleColumns()) {
    const cell = cells[column.key]();
    cell.classList.add(`col-${column.key}`);
    if (column.label) cell.dataset.label = column.label;
    tr.append(cell);
  }
  state.rows.set(job.id, tr);
  return tr;
}

/** Show `job` (fetched again) in its row, in the selection and in the detail panel. */
function updateJob(job) {
  if (state.jobs.has(job.id)) {
    state.jobs.set(job.id, job);
    state.fetchedAt.set(job.id, Date.now());
    const old = state.rows.get(job.id);
    const row = renderRow(job);
    if (old && old.isConnected) old.replaceWith(row);
    updateBatchBar();
    markOpenRow();
  }
  detail.update(job);
}

function removeJob(id) {
  const row = state.rows.get(id);
  if (row) row.remove();
  state.rows.delete(id);
  if (state.jobs.delete(id)) state.total = Math.max(0, state.total - 1);
  state.selected.delete(id);
  if (detail.jobId === id) detail.close();
  renderPager();
  updateBatchBar();
  updateSelectAll();
}

function markOpenRow() {
  for (const [id, row] of state.rows) row.classList.toggle("open", id === detail.jobId);
}

/** Fetch one job again; several requests for the same job while one is under way make one more fetch. */
async function refetchJob(id) {
  const running = state.refetching.get(id);
  if (running) {
    running.again = true;
    return;
  }
  const entry = { again: true };
  state.refetching.set(id, entry);
  try {
    while (entry.again) {
      entry.again = false;
      updateJob(await api.job(id));
    }
  } catch (error) {
    if (error.status === 404) removeJob(id);
    else if (error.status === 401) signOut("Your session has ended. Sign in again.");
    else console.warn(`jobctl: could not refresh job ${id}`, error);
  } finally {
    state.refetching.delete(id);
  }
}

/** Once a second: the durations of running jobs grow without asking the server. */
function tick() {
  const now = Date.now();
  for (const [id, job] of state.jobs) {
    if (job.status !== "RUNNING") continue;
    const cell = state.rows.get(id)?.querySelector('[data-testid="row-duration"]');
    if (cell) cell.textContent = formatDuration(job.duration_s + (now - (state.fetchedAt.get(id) || now)) / 1000);
  }
  detail.tick();
}

// ------------------------------------------------------------------------------------------ selection

function toggleSelected(id, on) {
  state.matching = false;
  if (on) state.selected.add(id);
  else state.selected.delete(id);
  state.rows.get(id)?.classList.toggle("selected", on);
  updateBatchBar();
  updateSelectAll();
}

function selectAll(on) {
  if (!on) state.matching = false;
  for (const [id, job] of state.jobs) {
    if (!canOperate(job.project)) continue;
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    const row = state.rows.get(id);
    if (row) {
      row.classList.toggle("selected", on);
      row.querySelector('[data-testid="row-select"]').checked = on;
    }
  }
  updateBatchBar();
  updateSelectAll();
}

function updateSelectAll() {
  const box = document.querySelector('[data-testid="select-all"]');
  if (!box) return;
  const operable = [...state.jobs.values()].filter((job) => canOperate(job.project));
  const chosen = operable.filter((job) => state.selected.has(job.id)).length;
  box.disabled = !operable.length;
  box.checked = operable.length > 0 && chosen === operable.length;
  box.indeterminate = chosen > 0 && chosen < operable.length;
}

function updateBatchBar() {
  const bar = $("batch-bar");
  const chosen = [...state.selected].map((id) => state.jobs.get(id)).filter(Boolean);
  bar.hidden = !chosen.length;
  if (!chosen.length) {
    state.matching = false;
    return;
  }
  const operable = [...state.jobs.values()].filter((job) => canOperate(job.project));
  const wholePage = operable.length > 0 && operable.every((job) => state.selected.has(job.id));
  if (!wholePage) state.matching = false;
  const more = state.total > state.jobs.size; // the filters match jobs on other pages too
  $("batch-count").textContent = state.matching
    ? `All ${state.total} jobs matching the filters selected`
    : `${chosen.length} selected`;
  const matching = $("batch-select-matching");
  matching.hidden = !wholePage || !more || state.matching;
  matching.textContent = `Select all ${state.total} jobs matching the filters`;
  const group = bar.querySelector(".batch-actions");
  group.replaceChildren(
    ...ACTIONS.map((action) => {
      const able = chosen.filter((job) => job.allowed.includes(action.name)).length;
      const button = h(
        "button",
        {
          type: "button",
          class: `btn${action.danger ? " btn-danger" : ""}`,
          disabled: !state.matching && able === 0,
          title: state.matching
            ? `${capitalized(action.name)} the jobs matching the filters that allow it (you are told how many first)`
            : `${able} of ${chosen.length} selected jobs allow ${action.name}`,
          dataset: { testid: `batch-${action.name}` },
        },
        action.label,
      );
      button.addEventListener("click", () => runBatch(action.name, button));
      return button;
    }),
  );
}

// ----------------------------------------------------------------------------------------- operations

function describe(id) {
  const job = state.jobs.get(id);
  return job ? `${shortId(id)} (${job.type}${allMode() ? `, ${job.project}` : ""})` : shortId(id);
}

/** `pause` -> `Paused`, `restart` -> `Restarted`. */
const past = (action) => `${capitalized(action)}${action.endsWith("e") ? "d" : "ed"}`;

async function confirmed(action, count) {
  if (!ACTIONS.some((a) => a.name === action && a.danger)) return true;
  const noun = count === 1 ? "job" : `${count} jobs`;
  const verb = capitalized(action);
  return confirmAction({
    title: `${verb} ${count === 1 ? "this job" : noun}?`,
    text: IRREVERSIBLE[action] ?? "This cannot be undone.",
    ok: `${verb} ${noun}`,
  });
}

/** One operation on one job, from its row or the detail panel. A refusal is shown as the server words it. */
async function runAction(job, action, button) {
  if (!(await confirmed(action, 1))) return;
  if (button) button.disabled = true;
  try {
    const changed = await api.operate(job.id, action);
    if (action === "delete") removeJob(job.id);
    else updateJob(changed);
    showMessage({ kind: "success", title: `${past(action)} job ${shortId(job.id)}.` });
  } catch (error) {
    if (error.status === 401) return signOut("Your session has ended. Sign in again.");
    const title = `Could not ${action} job ${shortId(job.id)}`;
    if (error.status === 409) {
      const allowed = error.body?.error?.allowed ?? error.body?.allowed;
      const now = allowed && allowed.length ? ` Allowed now: ${allowed.join(", ")}.` : "";
      showMessage({ kind: "error", title, text: `${sentence(error.message)}${now} The job has been refreshed.` });
      refetchJob(job.id);
    } else if (error.status === 404) {
      showMessage({ kind: "error", title, text: "It no longer exists." });
      removeJob(job.id);
    } else {
      showMessage({ kind: "error", title, text: sentence(error.message) });
    }
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

/** One operation on every selected job (`POST /jobs/batch`); each job succeeds or is refused on its own. */
async function runBatch(action, button) {
  if (state.matching) return runFilterBatch(action, button);
  const ids = [...state.selected].filter((id) => state.jobs.has(id));
  if (!ids.length || !(await confirmed(action, ids.length))) return;
  button.disabled = true;
  try {
    const { results } = await api.batch(action, ids);
    await batchDone(action, results);
  } catch (error) {
    reportError(error, `Could not ${action} the selected jobs`);
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

const jobsNoun = (n) => (n === 1 ? "1 job" : `${n} jobs`);

/** Report a batch's outcomes, job by job for the refused ones, and show the list as it is now. */
async function batchDone(action, results) {
  const done = results.filter((r) => r.ok);
  const refused = results.filter((r) => !r.ok);
  if (!refused.length) {
    showMessage({ kind: "success", title: `${past(action)} ${jobsNoun(done.length)}.` });
  } else {
    showMessage({
      kind: "error",
      title: `${past(action)} ${done.length} of ${jobsNoun(results.length)}; ${refused.length} refused:`,
      items: refused.map((r) => `${describe(r.id)}: ${sentence(errorText(r.error))}`),
    });
  }
  for (const r of results) if (r.ok && action === "delete") removeJob(r.id);
  await loadJobs();
}

/** The list's filters as a batch's `filter` (no project: every project the user sees - admins only). */
function batchFilter() {
  const view = state.view;
  const filter = { status: view.statuses };
  if (view.project) filter.project = view.project;
  if (view.type) filter.type = view.type;
  if (view.errorCode) filter.error_code = view.errorCode;
  if (view.q) filter.q = view.q;
  if (view.period !== "all") filter.period = view.period;
  return filter;
}

/**
 * One operation on every job matching the filters. The server is asked first what it would do (a dry run, which
 * changes nothing), the user is told - "This will discard 37 jobs in 3 projects" - and asked; then exactly the
 * jobs it named are operated, each on its own (one that moved on meanwhile is refused and reported).
 */
async function runFilterBatch(action, button) {
  button.disabled = true;
  try {
    const preview = await api.batchFilter(action, batchFilter(), true);
    const would = preview.results.filter((r) => r.ok);
    const left = preview.results.length - would.length;
    if (!would.length) {
      const matched = jobsNoun(preview.results.length);
      showMessage({ kind: "info", title: `None of the ${matched} matching the filters allows ${action}.` });
      return;
    }
    const projects = preview.preview.projects.length;
    const where = `${projects} ${projects === 1 ? "project" : "projects"}`;
    const more = left === 1 ? "1 more job matches but does not allow it" : `${left} more match but do not allow it`;
    const others = left ? ` (${more}.)` : "";
    const verb = capitalized(action);
    const ok = await confirmAction({
      title: `${verb} ${jobsNoun(would.length)}?`,
      text: `This will ${action} ${jobsNoun(would.length)} in ${where}.${others} ${IRREVERSIBLE[action] ?? ""}`.trim(),
      ok: `${verb} ${jobsNoun(would.length)}`,
    });
    if (!ok) return;
    const { results } = await api.batch(action, would.map((r) => r.id));
    state.matching = false;
    state.selected.clear();
    await batchDone(action, results);
  } catch (error) {
    reportError(error, `Could not ${action} the jobs matching the filters`);
  } finally {
    if (button.isConnected) button.disabled = false;
  }
}

function errorText(error) {
  if (!error) return "refused";
  if (typeof error === "string") return error;
  return error.message || JSON.stringify(error);
}

function sentence(text) {
  const value = String(text || "").trim();
  if (!value) return "";
  const first = value.charAt(0).toUpperCase() + value.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

function reportError(error, context) {
  if (error.status === 401) {
    signOut("Your session has ended: the token is no longer valid. Sign in again.");
    return;
  }
  showMessage({ kind: "error", title: context, text: sentence(error.message) });
}

// ----------------------------------------------------------------------------------------------- live

function startLive() {
  if (state.live) state.live.stop();
  const live = new LiveStream({
    projects: state.view.project ? [state.view.project] : [],
    onJob: onJobEvent,
    onState: (status) => showLiveState(live, status),
    onResync: () => {
      loadJobs();
      if (detail.jobId) refetchJob(detail.jobId);
    },
  });
  state.live = live;
  live.start();
}

function showLiveState(live, status) {
  if (live !== state.live) return;
  const box = $("live-status");
  box.dataset.state = status;
  box.querySelector(".live-text").textContent =
    { connecting: "Connecting\u2026", live: "Live", reconnecting: "Reconnecting\u2026", unauthorized: "Signed out" }[
      status
    ] || status;
  box.title = status === "live" ? "Changes appear as they happen" : "Live updates are not flowing; use Refresh";
  if (status === "unauthorized") signOut("Your session has ended: the token is no longer valid. Sign in again.");
}

/** A `job` event: move the progress in place; a change of status fetches the job again. */
function onJobEvent(message) {
  if (message.deleted) {
    if (state.jobs.has(message.id) || detail.jobId === message.id) removeJob(message.id);
    return;
  }
  const job = state.jobs.get(message.id);
  const shownInDetail = detail.jobId === message.id;
  if (!job) {
    if (shownInDetail) refetchJob(message.id);
    else maybeShowNewJob(message);
    return;
  }
  if (message.status !== job.status) {
    refetchJob(message.id);
    return;
  }
  state.pendingProgress.set(message.id, message);
  if (!state.progressFrame) state.progressFrame = requestAnimationFrame(flushProgress);
}

/** Progress events arrive up to ten times a second per job; paint them once per frame. */
function flushProgress() {
  state.progressFrame = 0;
  const messages = [...state.pendingProgress.values()];
  state.pendingProgress.clear();
  for (const message of messages) {
    const job = state.jobs.get(message.id);
    if (!job || job.status !== message.status) continue;
    if (message.progress !== null && message.progress !== undefined) job.progress = message.progress;
    const row = state.rows.get(message.id);
    if (row) {
      setProgress(row.querySelector('[data-testid="row-progress"]'), job.progress, job.status);
      if (message.step) {
        const known = job.steps.find((s) => s.index === message.step.index);
        if (known && known.status !== message.step.status) {
          refetchJob(message.id); // a step finished and the next one started: times and captions change
        } else if (known) {
          known.progress = message.step.progress;
        }
        row.querySelector('[data-testid="row-step"]').textContent =
          `Step ${message.step.index + 1}/${job.steps.length} \u00B7 ${message.step.name}`;
      }
    }
    if (detail.jobId === message.id) detail.progress(message);
  }
}

/** A job not on this page became PENDING (e.g. just submitted): reload page 1 if it belongs here. */
function maybeShowNewJob(message) {
  const view = state.view;
  if (message.status !== "PENDING" || view.page !== 1 || view.sort !== "-created_at") return;
  if (view.project && message.project !== view.project) return;
  if (view.statuses.length && !view.statuses.includes("PENDING")) return;
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(loadJobs, NEW_JOB_RELOAD_MS);
}

// ----------------------------------------------------------------------------------------------- boot

function boot() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("You have signed out.", "info"));
  $("batch-clear").addEventListener("click", () => selectAll(false));
  $("batch-select-matching").addEventListener("click", () => {
    state.matching = true;
    updateBatchBar();
  });
  wireFilters();
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && detail.jobId && !$("confirm-dialog").open) detail.close();
  });
  setInterval(tick, 1000);
  if (!getToken()) {
    showSignIn();
    return;
  }
  start().catch((error) => {
    clearToken();
    showSignIn(error.status === 401 ? "Your session has ended. Sign in again." : `Could not load: ${error.message}`);
  });
}

boot();
