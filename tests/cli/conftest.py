"""The `jobctl` command's tests. The live ones (tests/cli/test_client_commands_live.py, marked integration) run
against the live system of tests/integration/conftest.py: its fixtures are imported here, not written again.
Session-scoped fixtures are per conftest, so a run of both folders starts this folder's live system too."""

from __future__ import annotations

from tests.integration.conftest import api_url, project, system

__all__ = ["api_url", "project", "system"]
