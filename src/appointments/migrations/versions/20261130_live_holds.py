"""live_holds(): a client's live holds counted on a fresh snapshot (PostgreSQL only)

A reserve locks its client's row and counts the client's live holds in one
statement. A statement's own snapshot is taken before it waits for that lock, so
it would miss a hold that a rival committed while we waited; a VOLATILE function
takes a fresh snapshot for each query it runs, so, called after the lock is held,
it counts exactly.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite locks the whole database for a write: nothing to see late
    op.execute(
        """
        CREATE FUNCTION live_holds(client uuid, at timestamptz) RETURNS bigint
        LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $$
        BEGIN
            -- PL/pgSQL: never inlined into the caller, so the fresh snapshot is certain.
            RETURN (SELECT count(*) FROM reservations
                     WHERE client_id = client AND status = 'held' AND expires_at > at);
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION live_holds(uuid, timestamptz)")
