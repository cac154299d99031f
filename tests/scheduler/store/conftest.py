"""The store's tests write through the real services (SQLite and PostgreSQL) and submit jobs through the HTTP
API where that is the shortest way to a job in a given state: the API's fixtures are imported here, not
written again. No worker consumes the test queue, so nothing submitted here runs."""

from tests.api.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    client,
    new_project,
    project,
    services,
    unique,
)
