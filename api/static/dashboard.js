// The dashboard view of the monitor (the "Dashboard" tab, `#dashboard`): the jobs by status, a chart of the jobs
// that finished and failed per day, and the slowest job types - from `GET /api/v1/stats` (docs/contract.md §4.12),
// for the project and period the filters show. The chart is plain SVG built node by node: no library, nothing
// fetched but the API's JSON, and every string is set as text.

import { query, request } from "./api.js";
import { capitalized, formatDuration, h } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const DAY_MS = 86_400_000;
const MAX_DAYS = 366; // the chart's widest span: the latest days are shown
const SLOW_TYPES = 10; // rows of the slowest-types table
const CHART_HEIGHT = 240;
const MARGIN = { top: 12, right: 10, bottom: 26, left: 40 };
const PERIODS = { day: "the last day", week: "the last week", month: "the last month", year: "the last year" };

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

/** An SVG element with these attributes (values as text) and children (nodes, or strings as text). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** `YYYY-MM-DD` of a time's UTC day. */
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
/** Midnight UTC of `YYYY-MM-DD`, in ms. */
const dayStart = (day) => Date.parse(`${day}T00:00:00Z`);

/** 1, 2 or 5 times a power of ten: a tick step that gives about `ticks` ticks up to `max`. */
function niceStep(max, ticks = 4) {
  const raw = Math.max(1, max) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(1, step);
}

/**
 * The per-day series the chart draws: every UTC day from the window's start (or the first day with an outcome)
 * to its end (or today), at most MAX_DAYS (the latest), with zeros for the days the API leaves out.
 */
export function series(stats, now = Date.now()) {
  const known = new Map(stats.daily.map((d) => [d.day, d]));
  const days = stats.daily.map((d) => d.day);
  const first = stats.since ? isoDay(Date.parse(stats.since)) : days[0];
  if (!first) return { days: [], clipped: false };
  let last = stats.until ? isoDay(Date.parse(stats.until) - 1) : isoDay(now);
  if (days.length && days[days.length - 1] > last) last = days[days.length - 1];
  let start = dayStart(first);
  const end = dayStart(last);
  const clipped = (end - start) / DAY_MS + 1 > MAX_DAYS;
  if (clipped) start = end - (MAX_DAYS - 1) * DAY_MS;
  const out = [];
  for (let ms = start; ms <= end; ms += DAY_MS) {
    const day = isoDay(ms);
    const found = known.get(day);
    out.push({ day, finished: found ? found.finished : 0, failed: found ? found.failed : 0 });
  }
  return { days: out, clipped };
}

export class Dashboard {
  /** `root`: the dashboard's section; `onError(error, context)`: report a failed load (a 401 signs out). */
  constructor({ root, onError }) {
    this.root = root;
    this.onError = onError;
    this.stats = null;
    this.seq = 0;
    this.controller = null;
    this.signedIn = false;
    this.chartBox = null;
    this.chartWidth = 0;
    this.resizing = new ResizeObserver(() => this.resized());
    window.addEventListener("hashchange", () => this.applyHash());
    for (const testid of ["filter-project", "filter-period"]) {
      $(testid).addEventListener("change", () => this.visible && this.load());
    }
    $("refresh").addEventListener("click", () => this.visible && this.load());
  }

  get visible() {
    return !this.root.hidden;
  }

  /** After sign-in: show the view the address names (`#dashboard` or the job list). */
  start() {
    this.signedIn = true;
    this.applyHash();
  }

  /** At sign-out: forget what was shown. */
  stop() {
    this.signedIn = false;
    this.seq += 1;
    if (this.controller) this.controller.abort();
    this.stats = null;
    this.resizing.disconnect();
    this.root.replaceChildren();
    this.root.hidden = true;
  }

  applyHash() {
    const dashboard = this.signedIn && window.location.hash === "#dashboard";
    $("monitor").dataset.view = dashboard ? "dashboard" : "jobs";
    for (const [testid, current] of [
      ["tab-jobs", !dashboard],
      ["tab-dashboard", dashboard],
    ]) {
      if (current) $(testid).setAttribute("aria-current", "page");
      else $(testid).removeAttribute("aria-current");
    }
    document.getElementById("monitor-title").textContent = dashboard ? "Dashboard" : "Jobs";
    document.title = `${dashboard ? "Dashboard" : "Jobs"} \u00B7 jobctl`;
    const was = this.visible;
    this.root.hidden = !dashboard;
    if (dashboard && !was) this.load();
  }

  /** The filters the stats follow: the project (none: all the caller sees) and the period. */
  params() {
    const project = $("filter-project").value;
    const period = $("filter-period").value;
    return { project: project || undefined, period: period === "all" ? undefined : period };
  }

  async load() {
    const seq = ++this.seq;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    const params = this.params();
    this.root.setAttribute("aria-busy", "true");
    try {
      const stats = await request("GET", `/stats${query(params)}`, { signal: controller.signal });
      if (seq !== this.seq) return;
      this.stats = stats;
      this.render(params);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.onError(error, "Could not load the statistics");
    } finally {
      if (seq === this.seq) this.root.removeAttribute("aria-busy");
    }
  }

  render(params) {
    const stats = this.stats;
    const where = params.project ? `in ${params.project}` : "in every project you can see";
    const when = params.period ? `in ${PERIODS[params.period] || params.period}` : "at any time";
    this.chartBox = h("div", { class: "chart-box", dataset: { testid: "chart-box" } });
    this.root.replaceChildren(
      h(
        "p",
        { class: "dash-caption", dataset: { testid: "dash-caption" } },
        `${stats.total} ${stats.total === 1 ? "job" : "jobs"} created ${when}, ${where}.`,
      ),
      this.tiles(stats),
      h(
        "section",
        { class: "card dash-card", "aria-labelledby": "dash-chart-title" },
        h(
          "div",
          { class: "dash-card-head" },
          h("h2", { id: "dash-chart-title" }, "Finished and failed per day"),
          this.legend(stats),
        ),
        this.chartBox,
      ),
      h(
        "section",
        { class: "card dash-card", "aria-labelledby": "dash-types-title" },
        h(
          "div",
          { class: "dash-card-head" },
          h("h2", { id: "dash-types-title" }, "Slowest job types"),
          h("span", { class: "dash-note" }, "times of their finished jobs"),
        ),
        this.typesTable(stats),
      ),
    );
    this.chartWidth = 0;
    this.resizing.disconnect();
    this.resizing.observe(this.chartBox);
    this.drawChart();
  }

  tiles(stats) {
    const tile = (testid, label, value, dot) =>
      h(
        "div",
        { class: "card tile", dataset: { testid } },
        h("span", { class: "tile-label" }, dot, label),
        h("strong", { class: "tile-value", dataset: { testid: `${testid}-value` } }, String(value)),
      );
    return h(
      "div",
      { class: "dash-tiles", dataset: { testid: "dash-tiles" } },
      tile("stat-total", "All jobs", stats.total, null),
      Object.entries(stats.by_status).map(([status, n]) =>
        tile(
          `stat-${status}`,
          capitalized(status),
          n,
          h("span", { class: `chip-dot chip-dot-${status.toLowerCase()}`, "aria-hidden": "true" }),
        ),
      ),
    );
  }

  legend(stats) {
    const finished = stats.daily.reduce((sum, d) => sum + d.finished, 0);
    const failed = stats.daily.reduce((sum, d) => sum + d.failed, 0);
    return h(
      "ul",
      { class: "legend", "aria-label": "Legend" },
      h(
        "li",
        {},
        h("span", { class: "swatch swatch-finished", "aria-hidden": "true" }),
        "Finished ",
        h("strong", { dataset: { testid: "legend-finished" } }, String(finished)),
      ),
      h(
        "li",
        {},
        h("span", { class: "swatch swatch-failed", "aria-hidden": "true" }),
        "Failed ",
        h("strong", { dataset: { testid: "legend-failed" } }, String(failed)),
      ),
    );
  }

  resized() {
    if (!this.chartBox || !this.chartBox.isConnected) return;
    const width = Math.round(this.chartBox.clientWidth);
    if (width && width !== this.chartWidth) this.drawChart();
  }

  /** Stacked bars per UTC day (finished below, failed above), drawn at the box's width in pixels. */
  drawChart() {
    const box = this.chartBox;
    const { days, clipped } = series(this.stats);
    const total = days.reduce((sum, d) => sum + d.finished + d.failed, 0);
    this.chartWidth = Math.round(box.clientWidth);
    if (!days.length || !total) {
      box.replaceChildren(
        h("div", { class: "empty", dataset: { testid: "chart-empty" } }, "No job finished or failed in this period."),
      );
      return;
    }
    const width = Math.max(260, this.chartWidth || 640);
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;
    const highest = Math.max(...days.map((d) => d.finished + d.failed));
    const step = niceStep(highest);
    const top = Math.ceil(highest / step) * step;
    const y = (value) => MARGIN.top + plotH - (value / top) * plotH;
    const slot = plotW / days.length;
    const barW = Math.max(1, Math.min(32, slot * 0.72));

    const first = days[0].day;
    const last = days[days.length - 1].day;
    const chart = svg("svg", {
      class: "chart",
      width,
      height: CHART_HEIGHT,
      viewBox: `0 0 ${width} ${CHART_HEIGHT}`,
      role: "img",
      "aria-label": `Jobs finished and failed per day (UTC), ${first} to ${last}`,
      "data-testid": "chart",
    });
    for (let value = 0; value <= top; value += step) {
      const line = { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value) };
      chart.append(
        svg("line", { class: value ? "grid" : "axis", ...line }),
        svg("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" }, String(value)),
      );
    }
    days.forEach((d, i) => {
      const x = MARGIN.left + i * slot + (slot - barW) / 2;
      const group = svg("g", {
        class: "day",
        "data-testid": "chart-day",
        "data-day": d.day,
        "data-finished": d.finished,
        "data-failed": d.failed,
      });
      group.append(svg("title", {}, `${d.day}: ${d.finished} finished, ${d.failed} failed`));
      if (d.finished) {
        group.append(
          svg("rect", { class: "bar-finished", x, width: barW, y: y(d.finished), height: y(0) - y(d.finished) }),
        );
      }
      if (d.failed) {
        const base = d.finished + d.failed;
        group.append(svg("rect", { class: "bar-failed", x, width: barW, y: y(base), height: y(d.finished) - y(base) }));
      }
      // a transparent full-height target, so that a day with a small bar still shows its tooltip
      const target = { x: MARGIN.left + i * slot, width: slot, y: MARGIN.top, height: plotH, fill: "transparent" };
      group.append(svg("rect", target));
      chart.append(group);
    });
    const every = Math.max(1, Math.ceil(days.length / Math.max(1, Math.floor(plotW / 58))));
    days.forEach((d, i) => {
      if (i % every !== 0) return;
      const center = MARGIN.left + i * slot + slot / 2;
      const x = Math.min(Math.max(center, MARGIN.left + 16), width - MARGIN.right - 16);
      chart.append(svg("text", { x, y: CHART_HEIGHT - 8, "text-anchor": "middle" }, d.day.slice(5)));
    });
    const note = clipped ? h("p", { class: "dash-note" }, `The latest ${MAX_DAYS} days are shown.`) : null;
    box.replaceChildren(...[chart, note].filter(Boolean));
  }

  typesTable(stats) {
    const types = stats.types.slice(0, SLOW_TYPES);
    if (!types.length) {
      return h("div", { class: "empty", dataset: { testid: "types-empty" } }, "No jobs in this period.");
    }
    const time = (seconds) => (seconds === null || seconds === undefined ? "\u2014" : formatDuration(seconds));
    const cell = (testid, label, text) => h("td", { dataset: { testid, label } }, text);
    return h(
      "div",
      { class: "dash-table-wrap", tabindex: "0", "aria-label": "Slowest job types" },
      h(
        "table",
        { class: "slow-types", dataset: { testid: "slow-types" } },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col", rowspan: "2", class: "col-type" }, "Type"),
            h("th", { scope: "col", rowspan: "2" }, "Jobs"),
            h("th", { scope: "col", rowspan: "2" }, "Finished"),
            h("th", { scope: "colgroup", colspan: "2", class: "group" }, "Running"),
            h("th", { scope: "colgroup", colspan: "2", class: "group" }, "Waiting"),
          ),
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "p50"),
            h("th", { scope: "col" }, "p95"),
            h("th", { scope: "col" }, "p50"),
            h("th", { scope: "col" }, "p95"),
          ),
        ),
        h(
          "tbody",
          {},
          types.map((t) =>
            h(
              "tr",
              { dataset: { testid: "slow-type", type: t.type } },
              h("th", { scope: "row", class: "col-type", dataset: { testid: "slow-type-name" } }, t.type),
              cell("slow-type-jobs", "Jobs", String(t.jobs)),
              cell("slow-type-finished", "Finished", String(t.finished)),
              cell("slow-type-duration-p50", "Running p50", time(t.duration_p50_s)),
              cell("slow-type-duration-p95", "Running p95", time(t.duration_p95_s)),
              cell("slow-type-waiting-p50", "Waiting p50", time(t.waiting_p50_s)),
              cell("slow-type-waiting-p95", "Waiting p95", time(t.waiting_p95_s)),
            ),
          ),
        ),
      ),
    );
  }
}
