"""Deliveries that write a booking to a provider's CalDAV calendar; bookings made before
the calendar took them, still to be written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendars") as batch:
        batch.add_column(
            sa.Column("backfill_due", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index(
        "ix_calendars_backfill_due",
        "calendars",
        ["provider_id"],
        postgresql_where=sa.text("backfill_due"),
        sqlite_where=sa.text("backfill_due"),
    )
    with op.batch_alter_table("deliveries", recreate="auto") as batch:
        batch.add_column(sa.Column("calendar_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_deliveries_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.drop_constraint(op.f("ck_deliveries_known_channel"), type_="check")
        batch.create_check_constraint(
            "known_channel", "channel IN ('webhook', 'email', 'calendar')"
        )


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE channel = 'calendar'")
    with op.batch_alter_table("deliveries", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_deliveries_known_channel"), type_="check")
        batch.create_check_constraint("known_channel", "channel IN ('webhook', 'email')")
        batch.drop_constraint(op.f("fk_deliveries_calendar_id_calendars"), type_="foreignkey")
        batch.drop_column("calendar_id")
    op.drop_index("ix_calendars_backfill_due", table_name="calendars")
    with op.batch_alter_table("calendars") as batch:
        batch.drop_column("backfill_due")
