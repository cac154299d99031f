"""`jobctl jobs watch`: live progress bars that follow a job's events, re-fetching the job on every change of
status and at a steady poll, so the display stays right when events are late, missed or out of order."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from jobctl.cli.render import SHORT_ID, fmt_duration, status_text
from jobctl.client import ApiError, Job, JobStatus, NotFound, Unreachable
from jobctl.client import Error as ClientError
from jobctl.states import ENDED

#: an event source: given a project, the data of its `job` events as they arrive (docs/contract.md §4 `GET /events`)
EventSource = Callable[[str], Iterable[dict[str, Any]]]

DEFAULT_POLL_S = 2.0
DEGRADED_POLL_S = 0.5  # while the event stream is unavailable, poll faster so the bars keep moving
RECONNECT_S = 2.0
UNREACHABLE_S = 30.0  # how long a watch outlives an API that does not answer
WAKE_S = 0.25  # the longest the watcher waits for an event before it looks at the clock and the stream again


class JobGone(ClientError):
    """The watched job was deleted."""


class EventPump:
    """Runs an event source in a daemon thread and hands one job's events to the watcher through a queue.

    A stream that ends or breaks is reopened after `reconnect_s`; one the server refuses (404, 401, 403: no
    such endpoint, or not allowed) is given up. `live` says whether events are flowing at the moment.
    """

    def __init__(self, source: EventSource, project: str, job_id: str, reconnect_s: float = RECONNECT_S) -> None:
        self.source = source
        self.project = project
        self.job_id = job_id
        self.reconnect_s = reconnect_s
        self.live = False
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobctl-events", daemon=True)

    def start(self) -> None:
        """Start reading events in the background."""
        self.live = True
        self._thread.start()

    def stop(self) -> None:
        """Stop handing events over (the thread ends at its next event or when the process exits)."""
        self._stop.set()
        self.live = False

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next event of the job, or None if none arrives within `timeout` seconds."""
        try:
            return self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.live = True
                for message in self.source(self.project):
                    if self._stop.is_set():
                        return
                    if message.get("id") == self.job_id:
                        self._queue.put(message)
            except ApiError as exc:
                if exc.http_status in (401, 403, 404, 405):
                    self.live = False
                    return
            except Exception:  # a broken stream only costs liveness; the fetches keep the truth
                pass
            self.live = False
            self._stop.wait(self.reconnect_s)


class WatchView:
    """The live display of one job: an overall bar and one bar per step, each with its status and duration.

    Events move the bars at once; a line is printed for each change of the job's or a step's status the
    fetched job shows, so those lines tell the truth in order even when events come late or out of order.
    """

    def __init__(self, out: Console) -> None:
        self.out = out
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[duration]}", style="dim"),
            console=out,
        )
        self._tasks: dict[int | None, TaskID] = {}  # None: the job's bar; else a step's, by index
        self._seen: dict[int | None, str] = {}  # the latest status from an event or a fetch
        self._told: dict[int | None, str] = {}  # the status last printed as a line (from fetches only)

    def __enter__(self) -> WatchView:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def show(self, job: Job) -> None:
        """Set every bar to the job as fetched, and print a line for each change of status since the last."""
        if None not in self._tasks:
            self._tasks[None] = self._add(f"job {job.id[:SHORT_ID]} {job.type}")
        width = max((len(s.name) for s in job.steps), default=0)
        lines: list[Text] = []
        for step in job.steps:
            if step.index not in self._tasks:
                self._tasks[step.index] = self._add(f"  {step.index:>2} {step.name:<{width}}")
            done = 100.0 if step.status is JobStatus.FINISHED else step.progress
            self._update(step.index, step.status, done, fmt_duration(step.duration_s))
            if self._told.get(step.index, step.status) != step.status:
                lines.append(Text(f"step {step.index} {step.name} ") + status_text(step.status))
            self._told[step.index] = step.status
        self._update(None, job.status, job.progress, fmt_duration(job.duration_s))
        if self._told.get(None) != job.status:
            job_line = Text("job ") + status_text(job.status)
            lines = [*lines, job_line] if job.status.final else [job_line, *lines]
        self._told[None] = job.status
        for line in lines:
            self._say(line)

    def apply(self, event: dict[str, Any]) -> bool:
        """Move the bars to a `job` event; True if it tells of a change of status (worth a fetch)."""
        changed = False
        status = event.get("status")
        if isinstance(status, str):
            changed = status != self._seen.get(None)
            self._update(None, status, _number(event.get("progress")), None)
        step = event.get("step")
        if isinstance(step, dict) and isinstance(step.get("index"), int) and isinstance(step.get("status"), str):
            index, step_status = step["index"], step["status"]
            changed = changed or step_status != self._seen.get(index)
            done = 100.0 if step_status == JobStatus.FINISHED else _number(step.get("progress"))
            self._update(index, step_status, done, None)
        return changed

    def note(self, message: str) -> None:
        """Print a timestamped line above the bars."""
        self._say(Text(message, style="yellow"))

    def _say(self, line: Text) -> None:
        self.out.print(Text(time.strftime("%H:%M:%S "), style="dim") + line)

    def _add(self, label: str) -> TaskID:
        return self.progress.add_task(label, total=100, status="", duration="")

    def _update(self, key: int | None, status: str, progress: float | None, duration: str | None) -> None:
        self._seen[key] = status
        task = self._tasks.get(key)
        if task is None:  # a step the fetched job has not shown yet
            return
        fields: dict[str, Any] = {"status": status_text(status).markup}
        if duration is not None:
            fields["duration"] = duration
        if progress is not None:
            fields["completed"] = progress
        self.progress.update(task, **fields)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def follow(
    job_id: str,
    fetch: Callable[[], Job],
    source: EventSource | None,
    view: WatchView,
    poll_s: float = DEFAULT_POLL_S,
    until: frozenset[JobStatus] = ENDED,
) -> Job:
    """Keep `view` up to date with the job until its status is in `until`, and return it as it ended.

    The bars move with each of the job's events from `source`; the job is fetched again on every change of
    status an event tells of, and at the latest every `poll_s` seconds (every `DEGRADED_POLL_S` while the
    events do not flow), so the display is right even when events are missed. An API that stops answering is
    retried at each poll for `UNREACHABLE_S` before `Unreachable` is raised. Raises `JobGone` if the job is
    deleted meanwhile.
    """

    def fetch_shown() -> Job:
        try:
            job = fetch()
        except ApiError as exc:
            if isinstance(exc, NotFound) and not exc.missing_route:
                raise JobGone(f"job {job_id} no longer exists (deleted)") from exc
            raise
        view.show(job)
        return job

    job = fetch_shown()
    if job.status in until:
        return job
    pump = EventPump(source, job.project, job.id) if source is not None else None
    if pump is not None:
        pump.start()
    unreachable_since: float | None = None
    try:
        last_fetch = time.monotonic()
        while job.status not in until:
            interval = poll_s if pump is not None and pump.live else min(poll_s, DEGRADED_POLL_S)
            wait = min(WAKE_S, max(0.0, last_fetch + interval - time.monotonic()))
            event = None
            if pump is not None:
                event = pump.get(wait)
            else:
                time.sleep(wait)
            changed = False
            if event is not None:
                if event.get("deleted"):
                    raise JobGone(f"job {job_id} was deleted")
                changed = view.apply(event)
            if changed or time.monotonic() - last_fetch >= interval:
                last_fetch = time.monotonic()
                try:
                    job = fetch_shown()
                    unreachable_since = None
                except Unreachable as exc:  # e.g. the API restarting: keep the bars, try again at the next poll
                    if unreachable_since is None:
                        unreachable_since = last_fetch
                        view.note(f"{exc.message}; retrying for up to {UNREACHABLE_S:.0f}s")
                    elif last_fetch - unreachable_since > UNREACHABLE_S:
                        raise
    finally:
        if pump is not None:
            pump.stop()
    return job
