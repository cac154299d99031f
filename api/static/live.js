// Live job changes from `GET /api/v1/events` (Server-Sent Events). EventSource cannot send an Authorization
// header, so the stream is read with fetch() and parsed here; it reconnects after errors, backing off.

import { API, authHeaders, query } from "./api.js";

const SILENCE_MS = 45000; // the server sends a keepalive every 15 s; this much silence means a dead connection
const MAX_BACKOFF_MS = 10000;

/**
 * Parses an SSE byte stream into `{event, data}` messages. Feed it decoded text chunks; it calls `emit` for
 * every complete message (ended by a blank line). Comments (`: keepalive`) are skipped.
 */
export class SseParser {
  constructor(emit) {
    this.emit = emit;
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  feed(text) {
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, end);
      const newline = this.buffer[end] === "\r" && this.buffer[end + 1] === "\n" ? 2 : 1;
      this.buffer = this.buffer.slice(end + newline);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.emit({ event: this.event || "message", data: this.data.join("\n") });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
  }
}

/**
 * A self-reconnecting subscription. `onJob(message)` gets every `job` event's data; `onState(state)` gets
 * "connecting", "live", "reconnecting" or "unauthorized"; `onResync()` is called each time the server confirms
 * the subscription (its first bytes, sent once it is subscribed) - the first time too, since whatever changed
 * between the page's own load and that moment came before the stream.
 */
export class LiveStream {
  constructor({ projects = [], onJob, onState = () => {}, onResync = () => {} }) {
    this.projects = projects;
    this.onJob = onJob;
    this.onState = onState;
    this.onResync = onResync;
    this.controller = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  async run() {
    let backoff = 500;
    let connectedBefore = false;
    while (!this.stopped) {
      this.onState(connectedBefore ? "reconnecting" : "connecting");
      const controller = new AbortController();
      this.controller = controller;
      let watchdog = null;
      const feedWatchdog = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
      };
      try {
        feedWatchdog();
        const response = await fetch(`${API}/events${query({ project: this.projects })}`, {
          headers: authHeaders({ Accept: "text/event-stream" }),
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 401) {
          this.onState("unauthorized");
          this.stopped = true;
          break;
        }
        if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
        connectedBefore = true;
        let subscribed = false;
        const parser = new SseParser((message) => {
          if (message.event !== "job") return;
          try {
            this.onJob(JSON.parse(message.data));
          } catch (error) {
            console.warn("jobctl: ignoring a malformed event", error);
          }
        });
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          feedWatchdog();
          if (!subscribed) {
            // The headers come before the server subscribes; its first bytes, after. From here nothing is missed.
            subscribed = true;
            backoff = 500;
            this.onState("live");
            this.onResync();
          }
          parser.feed(value);
        }
      } catch (error) {
        if (!this.stopped && error.name !== "AbortError") console.warn("jobctl: live updates interrupted", error);
      } finally {
        clearTimeout(watchdog);
      }
      if (this.stopped) break;
      this.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}
