"""Migrations: reversible, and an upgrade keeps existing bookings."""

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from appointments import migrate
from appointments.db import create_engine
from appointments.models import metadata
from appointments.settings import Settings


def test_upgrade_from_first_revision_keeps_reservations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, "0001")
    provider, client, slot, reservation = (uuid.uuid4().hex for _ in range(4))
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO providers VALUES (?, 'P', NULL, 'UTC', '2027-01-01 00:00:00.000000',"
            " '2027-01-01 00:00:00.000000')",
            (provider,),
        )
        db.execute(
            "INSERT INTO clients VALUES (?, 'C', 'c@example.com', NULL,"
            " '2027-01-01 00:00:00.000000', '2027-01-01 00:00:00.000000')",
            (client,),
        )
        db.execute(
            "INSERT INTO slots VALUES (?, ?, '2027-02-01 09:00:00.000000',"
            " '2027-02-01 09:15:00.000000', 'confirmed', NULL)",
            (slot, provider),
        )
        db.execute(
            "INSERT INTO reservations (id, slot_id, provider_id, client_id, status, created_at,"
            " expires_at, confirmed_at) VALUES (?, ?, ?, ?, 'confirmed',"
            " '2027-01-01 00:00:00.000000', '2027-01-01 00:30:00.000000',"
            " '2027-01-01 00:10:00.000000')",
            (reservation, slot, provider, client),
        )
    migrate.upgrade(url)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, status, start_time, end_time FROM reservations").fetchall()
        slots = db.execute("SELECT status FROM slots").fetchall()
    assert rows == [
        (reservation, "confirmed", "2027-02-01 09:00:00.000000", "2027-02-01 09:15:00.000000")
    ]
    assert slots == [("confirmed",)]


def test_every_migration_is_reversible(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cycle.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "cycle.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"providers", "clients", "slots", "reservations", "idempotency_keys"} <= tables


def _drift(url: str) -> list[Any]:
    """What `alembic check` would report: the models against the migrated schema."""

    async def compare() -> list[Any]:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def test_the_models_and_the_migrations_describe_the_same_schema(database_url: str) -> None:
    """A column, index or type changed on one side only fails here, on both databases."""
    assert _drift(database_url) == []


def test_the_drift_check_can_fail(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "drift.db") as db:
        db.execute("DROP INDEX ix_reservations_client_id_held_expires_at")
    (difference,) = _drift(url)
    assert difference[0] == "add_index"
