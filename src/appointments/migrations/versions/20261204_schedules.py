"""A provider's standing week: schedules, date overrides, time off; who published a slot

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _provider(table: str) -> list[Any]:
    return [
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f(f"fk_{table}_provider_id_providers"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    # Every slot published so far came from a window.
    with op.batch_alter_table("slots") as batch:
        batch.add_column(
            sa.Column("source", sa.String(length=16), server_default="window", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_slots_known_source"), "source IN ('window', 'schedule')"
        )
    op.create_table(
        "schedules",
        *_provider("schedules"),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("published_through", sa.Date(), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.CheckConstraint(
            "horizon_days BETWEEN 1 AND 730", name=op.f("ck_schedules_horizon_in_range")
        ),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_schedules")),
    )
    op.create_table(
        "schedule_overrides",
        *_provider("schedule_overrides"),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("intervals", sa.JSON(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("provider_id", "day", name=op.f("pk_schedule_overrides")),
    )
    op.create_table(
        "time_off",
        sa.Column("id", sa.Uuid(), nullable=False),
        *_provider("time_off"),
        _time("start_time"),
        _time("end_time"),
        sa.Column("reason", sa.String(length=500), nullable=True),
        _time("created_at"),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_time_off_end_after_start")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_off")),
    )
    op.create_index(
        "ix_time_off_provider_id_start_time_id", "time_off", ["provider_id", "start_time", "id"]
    )


def downgrade() -> None:
    op.drop_table("time_off")
    op.drop_table("schedule_overrides")
    op.drop_table("schedules")
    with op.batch_alter_table("slots") as batch:
        batch.drop_constraint(op.f("ck_slots_known_source"), type_="check")
        batch.drop_column("source")
