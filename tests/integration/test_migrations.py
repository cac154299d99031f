"""Alembic's head is exactly the models, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from jobctl.scheduler.migrate import alembic_config, upgrade
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store.models import Base
from tests.conftest import fresh_database


def test_migrated_schema_equals_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_each_users_token_carries_over_as_their_default_token(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A database from before named tokens (revision 0003): after the upgrade every user signs in with the token
    they had, now named `default`, and nobody is disabled; the downgrade gives each user that token back."""
    url, drop = fresh_database(backend, tmp_path_factory, revision="0003")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO users (name, token_hash, admin, created_at) VALUES (:n, :h, :a, :t)"),
                [
                    {"n": "old-admin", "h": "a" * 64, "a": True, "t": datetime(2026, 1, 1)},
                    {"n": "old-viewer", "h": "b" * 64, "a": False, "t": datetime(2026, 1, 2)},
                ],
            )
        upgrade(url)
        with engine.connect() as conn:
            for name, token_hash, admin in (("old-admin", "a" * 64, True), ("old-viewer", "b" * 64, False)):
                user = accounts.user_by_token_hash(conn, token_hash)
                assert user is not None and (user.name, user.admin, user.disabled) == (name, admin, False)
            rows = conn.execute(text("SELECT name, prefix FROM tokens ORDER BY token_hash")).all()
            assert [tuple(r) for r in rows] == [("default", ""), ("default", "")]
        command.downgrade(alembic_config(url), "0003")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, token_hash FROM users ORDER BY name")).all()
        assert [tuple(r) for r in rows] == [("old-admin", "a" * 64), ("old-viewer", "b" * 64)]
    finally:
        engine.dispose()
        drop()
