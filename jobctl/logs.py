"""Logging for every jobctl process: plain text by default, one JSON object per line with
JOBCTL_LOG_FORMAT=json. Inside a worker's pool process each line carries the job, step and attempt the
process is working on (`job_id` is null between jobs). Imports nothing of jobctl, so every layer may use it."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: (job id, step index, attempt) of the work this process is doing, if any
_current: ContextVar[tuple[str | None, int | None, int | None] | None] = ContextVar("jobctl_work", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def set_work(job_id: str | None, step: int | None = None, attempt: int | None = None) -> None:
    """Tag the following log lines of this process with a job (None: no job)."""
    _current.set(None if job_id is None else (job_id, step, attempt))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, process, and the job it concerns."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.role,
            "pid": record.process,
        }
        if self.role == "worker":
            work = _current.get()
            line["job_id"], line["step"], line["attempt"] = work if work else (None, None, None)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(log_format: str, role: str, level: str = "INFO") -> None:
    """Send every log record of this process (warnings included) to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(role) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "tornado.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
