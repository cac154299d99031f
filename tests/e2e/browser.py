"""What the browser tests share: a tab that records what it did, and quick ways to make users and jobs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.system import System

ADMIN_TOKEN = "test-admin-token"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: how long a browser-side condition may take (live updates arrive within a second; jobs run a few seconds)
TIMEOUT_MS = 20_000


@dataclass
class Tab:
    """A page plus what it did: every request URL, and the JavaScript errors it raised."""

    page: Any
    base_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sign_in(self, token: str) -> None:
        """Open the monitor, sign in with `token` and wait until the job list has loaded."""
        from playwright.sync_api import expect

        self.page.goto(self.base_url + "/")
        self.page.get_by_test_id("token-input").fill(token)
        self.page.get_by_test_id("sign-in").click()
        expect(self.page.get_by_test_id("monitor")).to_be_visible()
        expect(self.page.get_by_test_id("pager-info")).not_to_be_empty()
        # a marker a page reload would wipe: tests check it is still there after the live updates they wait for
        self.page.evaluate("window.__jobctlNoReload = true")

    def not_reloaded(self) -> bool:
        """True if the page has not been reloaded since `sign_in`."""
        return bool(self.page.evaluate("window.__jobctlNoReload === true"))

    def row(self, job_id: str) -> Any:
        """The job's row in the list."""
        return self.page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')

    def overflow(self) -> tuple[int, int]:
        """The page's scroll width and the window's inner width (no horizontal overflow: first <= second)."""
        width, inner = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        return int(width), int(inner)


def create_user(client: httpx.Client, roles: dict[str, str], admin: bool = False) -> str:
    """A new user with these project roles, made through `POST /api/v1/users`; returns its token."""
    response = client.post("/users", json={"name": f"u{uuid.uuid4().hex[:10]}", "admin": admin, "roles": roles})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def sleep_job(live: System, project: str, steps: int, seconds: float, **params: Any) -> str:
    """Submit a `sleep` job straight through the domain and return its id."""
    return live.submit(project, params={"steps": steps, "seconds": seconds, **params}).id
