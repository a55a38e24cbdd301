"""Runs of a provider's slots (back-to-back rows, whatever their status), kept by
triggers on slots; and an index of the slots not available (taken, withdrawn or busy)

A series' later weeks are checked against these two, both few rows, instead of every
slot of every week (`appointment_types.start_times`). The triggers fire on INSERT and
DELETE only: no UPDATE of a slot (a reserve, a withdrawal) changes which rows exist.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The islands of back-to-back slots among `rows` (a slot whose start is not the end of
# the provider's slot before it begins one), as (provider_id, starts, ends).
_ISLANDS = """
    SELECT provider_id, min(start_time), max(end_time) FROM (
        SELECT provider_id, start_time, end_time,
               sum(CASE WHEN before_end = start_time THEN 0 ELSE 1 END)
                   OVER (PARTITION BY provider_id ORDER BY start_time) AS island
          FROM (SELECT provider_id, start_time, end_time,
                       lag(end_time) OVER (PARTITION BY provider_id ORDER BY start_time)
                           AS before_end
                  FROM {rows}) AS ordered) AS numbered
     GROUP BY provider_id, island
"""

# PostgreSQL: statement triggers with transition tables. An INSERT adds the islands of
# its own new rows (it reads no other row, so two concurrent inserts cannot race: runs
# may lie back to back, which the readers merge). A DELETE (a provider's deletion)
# derives the runs it cut again from the slots left.
_POSTGRESQL = [
    f"""
    CREATE FUNCTION slot_runs_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO slot_runs (provider_id, starts, ends) {_ISLANDS.format(rows="added")};
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION slot_runs_cut() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        p uuid;
        lo timestamptz;
        hi timestamptz;
    BEGIN
        FOR p, lo, hi IN
            SELECT provider_id, min(start_time), max(end_time) FROM removed GROUP BY provider_id
        LOOP
            SELECT least(lo, min(starts)), greatest(hi, max(ends)) INTO lo, hi
              FROM slot_runs WHERE provider_id = p AND starts < hi AND ends > lo;
            DELETE FROM slot_runs WHERE provider_id = p AND starts < hi AND ends > lo;
            INSERT INTO slot_runs (provider_id, starts, ends) {
        _ISLANDS.format(
            rows='''(
                SELECT provider_id, start_time, end_time FROM slots
                 WHERE provider_id = p AND start_time >= lo AND start_time < hi) AS kept'''
        )
    };
        END LOOP;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER slot_runs_add AFTER INSERT ON slots REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION slot_runs_add()
    """,
    """
    CREATE TRIGGER slot_runs_cut AFTER DELETE ON slots REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION slot_runs_cut()
    """,
]

# SQLite: row triggers (its only kind; writers run one at a time). A new slot extends
# the run ending at its start or begins its own; a deleted one splits its run.
_SQLITE = [
    """
    CREATE TRIGGER slot_runs_add AFTER INSERT ON slots BEGIN
        UPDATE slot_runs SET ends = NEW.end_time
         WHERE provider_id = NEW.provider_id AND ends = NEW.start_time;
        INSERT INTO slot_runs (provider_id, starts, ends)
        SELECT NEW.provider_id, NEW.start_time, NEW.end_time
         WHERE NOT EXISTS (SELECT 1 FROM slot_runs
                            WHERE provider_id = NEW.provider_id AND ends = NEW.end_time);
    END
    """,
    """
    CREATE TRIGGER slot_runs_cut AFTER DELETE ON slots BEGIN
        INSERT INTO slot_runs (provider_id, starts, ends)
        SELECT provider_id, OLD.end_time, ends FROM slot_runs
         WHERE provider_id = OLD.provider_id AND starts = (
                   SELECT max(starts) FROM slot_runs
                    WHERE provider_id = OLD.provider_id AND starts <= OLD.start_time)
           AND ends > OLD.end_time;
        DELETE FROM slot_runs WHERE provider_id = OLD.provider_id AND starts = OLD.start_time;
        UPDATE slot_runs SET ends = OLD.start_time
         WHERE provider_id = OLD.provider_id AND starts = (
                   SELECT max(starts) FROM slot_runs
                    WHERE provider_id = OLD.provider_id AND starts < OLD.start_time)
           AND ends > OLD.start_time;
    END
    """,
]


def upgrade() -> None:
    op.create_table(
        "slot_runs",
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("starts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends > starts", name=op.f("ck_slot_runs_ends_after_starts")),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_slot_runs_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "starts", name=op.f("pk_slot_runs")),
    )
    op.create_index(
        "ix_slots_provider_id_start_time_not_available",
        "slots",
        ["provider_id", "start_time"],
        postgresql_where=sa.text("status <> 'available' OR busy"),
        sqlite_where=sa.text("status <> 'available' OR busy"),
    )
    op.execute(f"INSERT INTO slot_runs (provider_id, starts, ends) {_ISLANDS.format(rows='slots')}")
    for statement in _POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER slot_runs_add ON slots" if _pg() else "DROP TRIGGER slot_runs_add")
    op.execute("DROP TRIGGER slot_runs_cut ON slots" if _pg() else "DROP TRIGGER slot_runs_cut")
    if _pg():
        op.execute("DROP FUNCTION slot_runs_add()")
        op.execute("DROP FUNCTION slot_runs_cut()")
    op.drop_index("ix_slots_provider_id_start_time_not_available", table_name="slots")
    op.drop_table("slot_runs")


def _pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"
