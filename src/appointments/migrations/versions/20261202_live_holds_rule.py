"""live_holds() states its condition as `scheduling.rules.hold_live` writes it

The same function (0005); its WHERE now carries the rule's own text, so a test
can hold the function to the rule (`tests/scheduling/test_rules.py`): a change of
the rule that forgets this function fails there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE OR REPLACE FUNCTION live_holds(client uuid, at timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $$
BEGIN
    -- PL/pgSQL: never inlined into the caller, so the fresh snapshot is certain.
    RETURN (SELECT count(*) FROM reservations
             WHERE client_id = client AND {live});
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(live="(status = 'held' AND expires_at > at)"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION.format(live="status = 'held' AND expires_at > at"))
