"""appointments of any length: appointment types, the slots a reservation occupies

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "appointment_types",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=True),
        sa.Column("max_advance_days", sa.Integer(), nullable=True),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("change_notice_minutes", sa.Integer(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.CheckConstraint(
            "duration_minutes > 0", name=op.f("ck_appointment_types_positive_duration")
        ),
        sa.CheckConstraint(
            "buffer_before_minutes >= 0 AND buffer_after_minutes >= 0",
            name=op.f("ck_appointment_types_buffers_not_negative"),
        ),
        sa.CheckConstraint(
            "max_per_day IS NULL OR max_per_day >= 1",
            name=op.f("ck_appointment_types_daily_cap_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_appointment_types_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_types")),
    )
    op.create_index(
        "ix_appointment_types_provider_id_created_at_id",
        "appointment_types",
        ["provider_id", "created_at", "id"],
    )

    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("appointment_type_id", sa.Uuid(), nullable=True))
        batch.add_column(_time("occupied_start", nullable=True))
        batch.add_column(_time("occupied_end", nullable=True))
    op.execute("UPDATE reservations SET occupied_start = start_time, occupied_end = end_time")
    with op.batch_alter_table("reservations") as batch:
        batch.alter_column("occupied_start", nullable=False)
        batch.alter_column("occupied_end", nullable=False)

    op.create_table(
        "reservation_slots",
        sa.Column("reservation_id", sa.Uuid(), nullable=False),
        sa.Column("slot_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_slots_reservation_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["slots.id"],
            name=op.f("fk_reservation_slots_slot_id_slots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reservation_id", "slot_id", name=op.f("pk_reservation_slots")),
    )
    op.create_index(
        "uq_reservation_slots_one_reservation_per_slot",
        "reservation_slots",
        ["slot_id"],
        unique=True,
    )
    # Every live reservation so far occupies exactly its own slot.
    op.execute(
        "INSERT INTO reservation_slots (reservation_id, slot_id, provider_id) "
        "SELECT id, slot_id, provider_id FROM reservations "
        "WHERE status IN ('held', 'confirmed')"
    )


def downgrade() -> None:
    op.drop_index("uq_reservation_slots_one_reservation_per_slot", table_name="reservation_slots")
    op.drop_table("reservation_slots")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("occupied_end")
        batch.drop_column("occupied_start")
        batch.drop_column("appointment_type_id")
    op.drop_index("ix_appointment_types_provider_id_created_at_id", table_name="appointment_types")
    op.drop_table("appointment_types")
