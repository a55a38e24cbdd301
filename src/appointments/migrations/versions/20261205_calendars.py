"""The provider's other calendars: their busy time, and which slots it covers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("slots") as batch:
        batch.add_column(sa.Column("busy", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("calendar_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("detail", sa.String(length=1000), nullable=True))
    op.create_table(
        "calendars",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password_secret", sa.Text(), nullable=True),
        sa.Column("write_bookings", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("last_synced_at", nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("busy_count", sa.Integer(), nullable=False),
        _time("sync_due_at"),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint("kind IN ('caldav', 'ics')", name=op.f("ck_calendars_known_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'ok', 'error')", name=op.f("ck_calendars_known_status")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_calendars_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
    )
    op.create_index(
        "ix_calendars_provider_id_created_at_id", "calendars", ["provider_id", "created_at", "id"]
    )
    op.create_index("ix_calendars_sync_due_at", "calendars", ["sync_due_at"])
    op.create_table(
        "busy_intervals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("calendar_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        _time("start_time"),
        _time("end_time"),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_busy_intervals_end_after_start")),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_busy_intervals_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_intervals")),
    )
    op.create_index(
        "ix_busy_intervals_provider_id_start_time",
        "busy_intervals",
        ["provider_id", "start_time"],
    )
    op.create_index("ix_busy_intervals_calendar_id", "busy_intervals", ["calendar_id"])


def downgrade() -> None:
    op.drop_table("busy_intervals")
    op.drop_table("calendars")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("detail")
        batch.drop_column("calendar_id")
    with op.batch_alter_table("slots") as batch:
        batch.drop_column("busy")
