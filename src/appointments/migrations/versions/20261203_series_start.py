"""An occurrence's start as its series booked it (its RECURRENCE-ID in invites), and one
live seat per client in a group session

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_SEAT_OF_CLIENT = "session_id IS NOT NULL AND status IN ('held', 'confirmed')"


def upgrade() -> None:
    op.create_index(
        "uq_reservations_one_seat_per_client",
        "reservations",
        ["session_id", "client_id"],
        unique=True,
        postgresql_where=sa.text(_SEAT_OF_CLIENT),
        sqlite_where=sa.text(_SEAT_OF_CLIENT),
    )
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("series_start", sa.DateTime(timezone=True), nullable=True))
    # Occurrences booked before: their start has not moved unless rescheduled (revision).
    op.execute(
        "UPDATE reservations SET series_start = start_time "
        "WHERE series_id IS NOT NULL AND revision = 0"
    )


def downgrade() -> None:
    op.drop_index("uq_reservations_one_seat_per_client", table_name="reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("series_start")
