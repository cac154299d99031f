"""The one settings class. Read it at entry points with `get_settings()`, never at import time."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob jobctl has, read from `JOBCTL_*` environment variables (docs/contract.md §6)."""

    model_config = SettingsConfigDict(env_prefix="JOBCTL_", extra="ignore")

    env: str = Field("development", description="`development` or `production`; production refuses unsafe defaults")
    database_url: str = "sqlite:///./jobctl.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_token: str | None = None
    file_root: Path = Path("./data")
    max_running: int | None = Field(None, ge=1, description="global limit of RUNNING jobs (unset: no limit)")
    project_max_running: int = Field(20, ge=1)
    retention_days: int = Field(30, ge=1)
    auth_failure_limit: int = Field(
        30, ge=1, description="invalid tokens one client address may send per window before it gets 429"
    )
    auth_failure_window_s: int = Field(60, ge=1, description="the window (seconds) invalid tokens are counted in")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    flower_port: int = 5555
    flower_url: str | None = Field(None, description="Flower's address as users reach it (default: localhost)")
    flower_user: str | None = None
    flower_password: str | None = None
    queue: str = Field("jobctl", description="Celery queue that carries step tasks")
    plugins: str = Field("", description="comma-separated modules to import: they register more job types")
    cors_origins: str = Field(
        "", description="comma-separated origins (scheme://host[:port]) whose pages may call the API (unset: none)"
    )
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per log line")
    log_level: str = "INFO"

    # Engine tuning (docs/contract.md §6.2): every one of them is a setting, not a constant.
    lease_s: float = Field(15.0, gt=0, description="a RUNNING step whose heartbeat is older than this is lost")
    queue_lease_s: float = Field(60.0, gt=0, description="a dispatched step not started within this is re-sent")
    stop_grace_s: float = Field(1.0, ge=0, description="time a stopped step gets to unwind before SIGKILL")
    progress_flush_s: float = Field(0.2, gt=0, description="how often a step's progress is written")
    scheduler_tick_s: float = Field(0.5, gt=0, description="longest pause between two scheduler passes")
    target_check_s: float = Field(1.0, gt=0, description="period of the target check of non-final jobs")
    worker_ttl_s: float = Field(10.0, gt=0, description="a worker silent for this long no longer counts")
    chain_s: float = Field(
        2.0, ge=0, description="how long a worker task runs the next steps and jobs itself (0: all go by the queue)"
    )
    self_fence_s: float | None = Field(
        None, gt=0, description="a worker stops a step whose lease it could not renew for this long (unset: lease_s/2)"
    )
    # Webhooks (docs/contract.md §4.11), sent by every scheduler process (`scheduler.webhooks`).
    webhook_allow_private: bool = Field(
        False, description="production: allow webhooks to loopback, private, link-local and unspecified addresses"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="each phase of a delivery's POST waits at most this")
    webhook_backoff_s: float = Field(10.0, gt=0, description="a failed delivery's first retry delay; doubled after")
    webhook_give_up_s: float = Field(3600.0, gt=0, description="a delivery not made this long after its event fails")
    webhook_senders: int = Field(8, ge=1, le=64, description="deliveries each scheduler sends at once")

    @field_validator("max_running", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", "0", 0) else value

    @field_validator("flower_user", "flower_password")
    @classmethod
    def _one_basic_auth_credential(cls, value: str | None) -> str | None:
        # Flower splits its basic-auth option at commas into several accepted credentials: "pw,x" would admit
        # anyone sending just "x" (and refuse the intended login).
        if value is not None and "," in value:
            raise ValueError("must not contain a comma (Flower would split it into several logins)")
        return value

    @field_validator("flower_user")
    @classmethod
    def _user_without_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("must not contain a colon (basic auth separates user and password with it)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return ",".join(_origin(part) for part in value.split(",") if part.strip())

    @field_validator("self_fence_s")
    @classmethod
    def _fence_before_the_lease_ends(cls, value: float | None, info: ValidationInfo) -> float | None:
        # docs/reliability.md "Several hosts": the stop must be over before anyone may take the attempt over.
        lease, grace = info.data.get("lease_s"), info.data.get("stop_grace_s")
        if value is not None and lease is not None and grace is not None and value + grace >= lease:
            raise ValueError("must leave time for JOBCTL_STOP_GRACE_S before JOBCTL_LEASE_S runs out")
        return value

    @property
    def self_fence_deadline_s(self) -> float:
        """How long a worker runs a step whose lease it cannot renew before stopping it (docs/reliability.md)."""
        return self.self_fence_s if self.self_fence_s is not None else self.lease_s / 2

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """The origins of `cors_origins`, each as a browser sends it in its `Origin` header."""
        return tuple(part for part in self.cors_origins.split(",") if part)

    @property
    def flower_base_url(self) -> str:
        """Where users open Flower: JOBCTL_FLOWER_URL, else this machine's Flower port; never with the user and
        password a JOBCTL_FLOWER_URL may hold (this is the link in every job's JSON and in the monitor: the
        browser asks for Flower's login instead)."""
        parts = urlsplit(self.flower_url or f"http://127.0.0.1:{self.flower_port}")
        return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")

    def check_safe(self) -> None:
        """Refuse defaults that are only acceptable on a developer's machine."""
        if self.env != "production":
            return
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append("JOBCTL_DATABASE_URL must point at PostgreSQL in production")
        if not self.admin_token:
            problems.append("JOBCTL_ADMIN_TOKEN must be set in production")
        elif len(self.admin_token) < MIN_ADMIN_TOKEN:
            problems.append(f"JOBCTL_ADMIN_TOKEN must have at least {MIN_ADMIN_TOKEN} characters in production")
        if not (self.flower_user and self.flower_password):
            problems.append("JOBCTL_FLOWER_USER and JOBCTL_FLOWER_PASSWORD must be set in production")
        elif len(self.flower_password) < MIN_FLOWER_PASSWORD:
            problems.append(f"JOBCTL_FLOWER_PASSWORD must have at least {MIN_FLOWER_PASSWORD} characters in production")
        if problems:
            raise ValueError("; ".join(problems))


# The shortest secrets production accepts: what `secrets.token_urlsafe(24)` and `token_urlsafe(12)` give (the
# README's and docker-compose.yml's recipes), 192 and 96 random bits.
MIN_ADMIN_TOKEN = 32
MIN_FLOWER_PASSWORD = 16


_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(text: str) -> str:
    """`text` as the origin a browser sends (lower case), or ValueError if it is not one: `scheme://host[:port]`,
    http or https, with no path (not even `/`), query, user or default port."""
    origin = text.strip().lower()
    match = _ORIGIN.fullmatch(origin)
    if match is None or int(match["port"] or 1) > 65535:
        raise ValueError(
            f"{text.strip()!r} is not an origin: write scheme://host[:port] (http or https) with no path, "
            "not even a trailing /"
        )
    if match["port"] == _DEFAULT_PORTS[match["scheme"]]:
        raise ValueError(f"{text.strip()!r}: leave out the default port (browsers send the origin without it)")
    return origin


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
