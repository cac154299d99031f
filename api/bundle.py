"""A job's diagnostic bundle (docs/contract.md §4.13): what it holds, with nothing secret in it, as a zip.

`GET /api/v1/jobs/{id}/diagnostics` (`api.routes.diagnostics`) gathers the parts; this module holds the rules of
what may go in and writes the zip:

- `public_settings`: every setting, but those named like a secret (a token, a password, a secret, a key) are
  shown only as set (`***`) or unset (null), and every URL among the values loses its password (`redact_url`);
- `versions`: jobctl's, Python's and its main dependencies';
- `zip_bundle`: the files, in a zip, each under a fixed name (`Bundle.files`); any URL in them with a password
  in its user part - in a job's params, a log line, a Flower link - loses it (`scrub`).
"""

from __future__ import annotations

import io
import json
import platform
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jobctl.scheduler.settings import Settings

__all__ = [
    "MASK",
    "PACKAGES",
    "Bundle",
    "log_name",
    "public_settings",
    "redact_url",
    "scrub",
    "versions",
    "zip_bundle",
]

#: What stands in the bundle for a secret, or for a URL's password.
MASK = "***"
#: A setting (or a URL's query parameter) whose name says it holds a secret: its value never goes in the bundle.
SECRET_NAME = re.compile(r"token|passw|secret|key|credential", re.IGNORECASE)
#: The distributions whose versions the bundle lists, beside jobctl's own and Python's.
PACKAGES = ("jobctl", "celery", "kombu", "redis", "sqlalchemy", "fastapi", "pydantic", "psycopg")


def redact_url(url: str) -> str:
    """`url` without any password it carries: in its user part (`postgresql://user:***@host/db`,
    `redis://:***@host`) or in a query parameter named like a secret (`?password=***`). A value that is not a
    URL with a host (`sqlite:///./jobctl.db`, plain text) comes back as it is."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")  # a raw `@` in the password: the host is after the last one
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else netloc
    query = "&".join(_redact_parameter(p) for p in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


#: `scheme://user:password@` anywhere in a text; the password runs to the last `@` before a space or a `/`.
URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)[^\s/]+(?=@)")


def scrub(text: str) -> str:
    """`text` with the password of every URL in it masked (`https://user:***@host`): what goes in a bundle
    besides the settings - params, log lines, links - may hold such a URL, and it must not travel with it."""
    return URL_PASSWORD.sub(lambda match: f"{match['head']}{MASK}", text)


def _redact_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    return f"{name}={MASK}" if equals and SECRET_NAME.search(name) else parameter


def public_settings(settings: Settings) -> dict[str, Any]:
    """Every setting by name (as `JOBCTL_<NAME>` sets it), with no secret: one named like a secret (the admin
    token, Flower's password) is `***` when set and null when not; a URL keeps everything but its password
    (`redact_url`; a comma-separated list of them, each)."""
    public: dict[str, Any] = {}
    for name, value in settings.model_dump(mode="json").items():
        if SECRET_NAME.search(name):
            public[name] = MASK if value else None
        elif isinstance(value, str) and "://" in value:
            public[name] = ",".join(redact_url(part) for part in value.split(","))
        else:
            public[name] = value
    return public


def versions() -> dict[str, str | None]:
    """Python's version and each of `PACKAGES`' installed version (null if it is not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@dataclass
class Bundle:
    """The parts of one job's bundle, as JSON values and log texts; `files` names them as the zip does."""

    job_id: str
    job: dict[str, Any]
    events: list[dict[str, Any]]
    logs: dict[str, str]  # the file name under logs/ -> the step's whole log
    job_type: dict[str, Any]
    settings: dict[str, Any]
    workers: dict[str, Any]
    versions: dict[str, str | None]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def files(self) -> dict[str, str]:
        """File name -> content: the manifest first, then the job, its events, type, workers, the settings, the
        versions and each step's log."""
        parts: dict[str, Any] = {
            "job.json": self.job,
            "events.json": self.events,
            "job-type.json": self.job_type,
            "workers.json": self.workers,
            "settings.json": self.settings,
            "versions.json": self.versions,
        }
        texts = {name: _json(value) for name, value in parts.items()}
        texts.update({f"logs/{name}": text for name, text in self.logs.items()})
        manifest = {
            "job": self.job_id,
            "generated_at": self.generated_at.isoformat().replace("+00:00", "Z"),
            "files": ["manifest.json", *texts],
            "secrets": "none: settings named like a secret show only whether they are set; URLs lose their password",
        }
        return {"manifest.json": _json(manifest), **texts}


def log_name(index: int, name: str) -> str:
    """The file name of step `index`'s log: `0-extract.log` (anything but letters, digits, `.`, `_`, `-` in the
    step's name becomes `_`)."""
    return f"{index}-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.log"


def zip_bundle(bundle: Bundle) -> bytes:
    """The bundle as a zip archive, every file under `job-<id>-diagnostics/`."""
    buffer = io.BytesIO()
    stamp = bundle.generated_at.astimezone(UTC).timetuple()[:6]
    folder = f"job-{bundle.job_id}-diagnostics"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in bundle.files().items():
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, scrub(text).encode("utf-8"))
    return buffer.getvalue()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
