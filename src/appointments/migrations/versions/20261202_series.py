"""Recurring series: the series table, each occurrence's `series_id`, and a client's
live holds counted with a series as one

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# `scheduling.rules.live_hold_count`: a series counts as one hold.
_FUNCTION = """
CREATE OR REPLACE FUNCTION live_holds(client uuid, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $$
BEGIN
    -- PL/pgSQL: never inlined into the caller, so the fresh snapshot is certain.
    RETURN (SELECT {count} FROM reservations
             WHERE client_id = client AND (status = 'held' AND expires_at > at));
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_type_id", sa.Uuid(), nullable=True),
        sa.Column("interval_weeks", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        _time("first_start"),
        _time("expires_at"),
        _time("created_at"),
        sa.CheckConstraint(
            "interval_weeks BETWEEN 1 AND 4", name=op.f("ck_series_interval_in_range")
        ),
        sa.CheckConstraint("count BETWEEN 2 AND 52", name=op.f("ck_series_count_in_range")),
        sa.CheckConstraint("policy IN ('all', 'available')", name=op.f("ck_series_known_policy")),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_series_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_series_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
    )
    op.create_index("ix_series_client_id", "series", ["client_id"])
    op.create_index("ix_series_provider_id", "series", ["provider_id"])
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("series_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_reservations_series_id_series"),
            "series",
            ["series_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index(
        "ix_reservations_series_id_start_time",
        "reservations",
        ["series_id", "start_time"],
        postgresql_where=sa.text("series_id IS NOT NULL"),
        sqlite_where=sa.text("series_id IS NOT NULL"),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("series_id", sa.Uuid(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(count="count(DISTINCT coalesce(series_id, id))"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(count="count(*)"))
    with op.batch_alter_table("events") as batch:
        batch.drop_column("series_id")
    op.drop_index("ix_reservations_series_id_start_time", table_name="reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_constraint(op.f("fk_reservations_series_id_series"), type_="foreignkey")
        batch.drop_column("series_id")
    op.drop_index("ix_series_provider_id", table_name="series")
    op.drop_index("ix_series_client_id", table_name="series")
    op.drop_table("series")
