"""Alembic environment: runs migrations over the service's own async engine."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from appointments.db import create_engine
from appointments.models import metadata
from appointments.settings import Settings, get_settings

config = context.config
target_metadata = metadata


def _settings() -> Settings:
    url = config.get_main_option("sqlalchemy.url")
    base = get_settings()
    return base.model_copy(update={"database_url": url}) if url else base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER constraints in place; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")


async def _run_online() -> None:
    engine = create_engine(_settings(), enforce_foreign_keys=False)
    async with engine.connect() as connection:
        await connection.execution_options(writes=True)
        await connection.run_sync(_run)
        await connection.run_sync(_check_foreign_keys)
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_online())
