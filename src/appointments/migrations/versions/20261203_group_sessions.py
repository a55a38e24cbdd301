"""Group sessions: a type's capacity, the group_sessions table, a reservation's seats and
session, and slots occupied by a reservation or by a session

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "status IN ('held', 'confirmed')"
_LIVE_PLAIN = "status IN ('held', 'confirmed') AND session_id IS NULL"


def _time(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _one_live_per_slot(where: str) -> None:
    op.create_index(
        "uq_reservations_one_live_per_slot",
        "reservations",
        ["slot_id"],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("appointment_types") as batch:
        batch.add_column(sa.Column("capacity", sa.Integer(), server_default="1", nullable=False))
        batch.create_check_constraint(
            op.f("ck_appointment_types_capacity_in_range"), "capacity BETWEEN 1 AND 500"
        )
    op.create_table(
        "group_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_type_id", sa.Uuid(), nullable=False),
        sa.Column("slot_id", sa.Uuid(), nullable=False),
        _time("start_time"),
        _time("end_time"),
        _time("occupied_start"),
        _time("occupied_end"),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        _time("created_at"),
        sa.CheckConstraint(
            "capacity BETWEEN 1 AND 500", name=op.f("ck_group_sessions_capacity_in_range")
        ),
        sa.CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= capacity",
            name=op.f("ck_group_sessions_seats_within_capacity"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_group_sessions_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_sessions")),
    )
    op.create_index(
        "uq_group_sessions_open_per_start",
        "group_sessions",
        ["provider_id", "appointment_type_id", "start_time"],
        unique=True,
        postgresql_where=sa.text("seats_taken > 0"),
        sqlite_where=sa.text("seats_taken > 0"),
    )
    op.create_index(
        "ix_group_sessions_provider_id_start_time_id",
        "group_sessions",
        ["provider_id", "start_time", "id"],
    )
    op.drop_index("uq_reservations_one_live_per_slot", table_name="reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("seats", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch.create_check_constraint(op.f("ck_reservations_seats_positive"), "seats >= 1")
        batch.create_foreign_key(
            op.f("fk_reservations_session_id_group_sessions"),
            "group_sessions",
            ["session_id"],
            ["id"],
            ondelete="CASCADE",
        )
    _one_live_per_slot(_LIVE_PLAIN)
    op.create_index(
        "ix_reservations_session_id",
        "reservations",
        ["session_id"],
        postgresql_where=sa.text("session_id IS NOT NULL"),
        sqlite_where=sa.text("session_id IS NOT NULL"),
    )
    # The slots' occupants: keyed by slot, a reservation or a session.
    op.drop_index("uq_reservation_slots_one_reservation_per_slot", table_name="reservation_slots")
    op.rename_table("reservation_slots", "reservation_slots_0009")
    op.create_table(
        "reservation_slots",
        sa.Column("slot_id", sa.Uuid(), nullable=False),
        sa.Column("reservation_id", sa.Uuid(), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "(reservation_id IS NULL) <> (session_id IS NULL)",
            name=op.f("ck_reservation_slots_one_occupant"),
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_reservation_slots_reservation_id_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["group_sessions.id"],
            name=op.f("fk_reservation_slots_session_id_group_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["slots.id"],
            name=op.f("fk_reservation_slots_slot_id_slots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slot_id", name="uq_reservation_slots_one_reservation_per_slot"),
    )
    op.execute(
        "INSERT INTO reservation_slots (slot_id, reservation_id, provider_id) "
        "SELECT slot_id, reservation_id, provider_id FROM reservation_slots_0009"
    )
    op.drop_table("reservation_slots_0009")
    op.create_index("ix_reservation_slots_reservation_id", "reservation_slots", ["reservation_id"])
    op.create_index(
        "ix_reservation_slots_session_id",
        "reservation_slots",
        ["session_id"],
        postgresql_where=sa.text("session_id IS NOT NULL"),
        sqlite_where=sa.text("session_id IS NOT NULL"),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("seats", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("seats")
        batch.drop_column("session_id")
    op.drop_index("ix_reservation_slots_session_id", table_name="reservation_slots")
    op.drop_index("ix_reservation_slots_reservation_id", table_name="reservation_slots")
    op.rename_table("reservation_slots", "reservation_slots_0010")
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
    op.execute(
        "INSERT INTO reservation_slots (reservation_id, slot_id, provider_id) "
        "SELECT reservation_id, slot_id, provider_id FROM reservation_slots_0010 "
        "WHERE reservation_id IS NOT NULL"
    )
    op.drop_table("reservation_slots_0010")
    op.create_index(
        "uq_reservation_slots_one_reservation_per_slot",
        "reservation_slots",
        ["slot_id"],
        unique=True,
    )
    op.drop_index("ix_reservations_session_id", table_name="reservations")
    op.drop_index("uq_reservations_one_live_per_slot", table_name="reservations")
    # Seats of sessions end with the sessions.
    op.execute("DELETE FROM reservations WHERE session_id IS NOT NULL")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_constraint(op.f("fk_reservations_session_id_group_sessions"), type_="foreignkey")
        batch.drop_constraint(op.f("ck_reservations_seats_positive"), type_="check")
        batch.drop_column("session_id")
        batch.drop_column("seats")
    _one_live_per_slot(_LIVE)
    op.drop_index("ix_group_sessions_provider_id_start_time_id", table_name="group_sessions")
    op.drop_index("uq_group_sessions_open_per_start", table_name="group_sessions")
    op.drop_table("group_sessions")
    with op.batch_alter_table("appointment_types") as batch:
        batch.drop_constraint(op.f("ck_appointment_types_capacity_in_range"), type_="check")
        batch.drop_column("capacity")
