"""Alembic environment: the URL comes from the caller (`scheduler.migrate`), the metadata from the models."""

from alembic import context
from sqlalchemy import create_engine

from jobctl.scheduler.store.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "scheduler.migrate sets sqlalchemy.url"


def run() -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
