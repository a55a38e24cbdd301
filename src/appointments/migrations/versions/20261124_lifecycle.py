"""booking lifecycle: removed slots, reservation times, idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESERVED = sa.text("status = 'reserved'")


def _replace_status_check(statuses: str) -> None:
    # SQLite cannot alter a CHECK in place; batch mode rebuilds the table. Its
    # partial index is dropped first and recreated after, so nothing is lost.
    op.drop_index("ix_slots_stale_hold", table_name="slots")
    with op.batch_alter_table("slots", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_slots_known_status"), type_="check")
        batch.create_check_constraint("known_status", f"status IN ({statuses})")
    op.create_index(
        "ix_slots_stale_hold",
        "slots",
        ["hold_expires_at"],
        postgresql_where=RESERVED,
        sqlite_where=RESERVED,
    )


def upgrade() -> None:
    _replace_status_check("'available', 'reserved', 'confirmed', 'removed'")

    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("start_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("end_time", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE reservations SET "
        "start_time = (SELECT start_time FROM slots WHERE slots.id = reservations.slot_id), "
        "end_time = (SELECT end_time FROM slots WHERE slots.id = reservations.slot_id)"
    )
    with op.batch_alter_table("reservations") as batch:
        batch.alter_column("start_time", nullable=False)
        batch.alter_column("end_time", nullable=False)
    op.drop_index("ix_reservations_client_id_created_at", table_name="reservations")
    op.drop_index("ix_reservations_provider_id_created_at", table_name="reservations")
    op.create_index(
        "ix_reservations_client_id_start_time_id",
        "reservations",
        ["client_id", "start_time", "id"],
    )
    op.create_index(
        "ix_reservations_provider_id_start_time_id",
        "reservations",
        ["provider_id", "start_time", "id"],
    )
    op.create_index("ix_reservations_slot_id", "reservations", ["slot_id"])

    op.create_table(
        "idempotency_keys",
        sa.Column("scope_id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope_id", "operation", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_reservations_slot_id", table_name="reservations")
    op.drop_index("ix_reservations_provider_id_start_time_id", table_name="reservations")
    op.drop_index("ix_reservations_client_id_start_time_id", table_name="reservations")
    op.create_index(
        "ix_reservations_provider_id_created_at", "reservations", ["provider_id", "created_at"]
    )
    op.create_index(
        "ix_reservations_client_id_created_at", "reservations", ["client_id", "created_at"]
    )
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("end_time")
        batch.drop_column("start_time")
    op.execute("DELETE FROM slots WHERE status = 'removed'")
    _replace_status_check("'available', 'reserved', 'confirmed'")
