"""initial schema: providers, clients, slots, reservations

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('held', 'confirmed')")
HELD = sa.text("status = 'held'")
RESERVED = sa.text("status = 'reserved'")


def _time(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
    )
    op.create_index("ix_providers_created_at_id", "providers", ["created_at", "id"])

    op.create_table(
        "clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_index("ix_clients_created_at_id", "clients", ["created_at", "id"])

    op.create_table(
        "slots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        _time("start_time"),
        _time("end_time"),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("hold_expires_at", nullable=True),
        sa.CheckConstraint(
            "(status = 'reserved') = (hold_expires_at IS NOT NULL)",
            name=op.f("ck_slots_hold_expiry_only_when_reserved"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'reserved', 'confirmed')", name=op.f("ck_slots_known_status")
        ),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_slots_end_after_start")),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_slots_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slots")),
        sa.UniqueConstraint(
            "provider_id", "start_time", name=op.f("uq_slots_provider_id_start_time")
        ),
    )
    op.create_index(
        "ix_slots_stale_hold",
        "slots",
        ["hold_expires_at"],
        postgresql_where=RESERVED,
        sqlite_where=RESERVED,
    )

    op.create_table(
        "reservations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slot_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("confirmed_at", nullable=True),
        _time("cancelled_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('held', 'confirmed', 'expired', 'cancelled')",
            name=op.f("ck_reservations_known_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_reservations_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_reservations_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["slots.id"],
            name=op.f("fk_reservations_slot_id_slots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    op.create_index(
        "uq_reservations_one_live_per_slot",
        "reservations",
        ["slot_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "ix_reservations_held_expires_at",
        "reservations",
        ["expires_at"],
        postgresql_where=HELD,
        sqlite_where=HELD,
    )
    op.create_index(
        "ix_reservations_client_id_created_at", "reservations", ["client_id", "created_at"]
    )
    op.create_index(
        "ix_reservations_provider_id_created_at", "reservations", ["provider_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("slots")
    op.drop_table("clients")
    op.drop_table("providers")
