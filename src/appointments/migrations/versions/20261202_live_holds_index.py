"""An index that matches a client's live-holds count exactly

Every reserve counts the client's live holds (`live_holds()`, and the query of
`booking.repository.count_live_holds`): client, status 'held', expiry after now.
Without an index on exactly that, a plan made before statistics exist (a freshly
migrated database, or PL/pgSQL's cached generic plan) walked the sweeper's index of
every live hold and filtered by client: about 1,270 index entries per reserve in a
10-second run, growing with the table. With it, the count reads the client's own
holds and nothing else, at any table size (`python -m bench.holds`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_reservations_client_id_held_expires_at",
        "reservations",
        ["client_id", "expires_at"],
        postgresql_where=sa.text("status = 'held'"),
        sqlite_where=sa.text("status = 'held'"),
    )


def downgrade() -> None:
    op.drop_index("ix_reservations_client_id_held_expires_at", table_name="reservations")
