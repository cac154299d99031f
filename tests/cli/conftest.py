"""The `jobctl` command's tests. The live ones (tests/cli/test_client_commands_live.py, marked integration) run
against the session's shared live system (`system`, `api_url` from tests/live.py), with the integration tests'
`project` fixture."""

from __future__ import annotations

from tests.integration.conftest import project

__all__ = ["project"]
