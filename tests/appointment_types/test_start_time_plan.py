"""The start-time page is an ordered index scan that its LIMIT stops early, also when
several providers' slots interleave on disk (PostgreSQL, on the service's own
connections): planned with PostgreSQL's default random_page_cost it became a bitmap
scan of all the provider's slots and a sort."""

import uuid
from datetime import timedelta
from typing import Any

import pytest

from appointments import rawsql
from appointments.appointment_types import start_times
from appointments.appointment_types.rules import BookingRules
from appointments.clock import FrozenClock
from appointments.settings import Settings
from tests import plans
from tests.api import Api
from tests.conftest import START

PROVIDERS = 10
DAYS_A_TURN = 20
TURNS = 10


def test_a_page_reads_a_few_index_rows_among_interleaved_providers(
    api: Api, clock: FrozenClock
) -> None:
    if api.dialect != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    providers = [uuid.UUID(api.provider(f"Dr {n}")["id"]) for n in range(PROVIDERS)]
    # Each provider's slots written in turns of 20 days, so their rows interleave.
    for turn in range(TURNS):
        for provider in providers:
            api.sql(
                "INSERT INTO slots (id, provider_id, start_time, end_time, status)"
                " SELECT gen_random_uuid(), :p,"
                " CAST(:base AS timestamptz) + i * interval '15 minutes',"
                " CAST(:base AS timestamptz) + (i + 1) * interval '15 minutes', 'available'"
                " FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i",
                p=provider,
                base=START + timedelta(days=2),
                first=turn * DAYS_A_TURN * 96,
                last=(turn + 1) * DAYS_A_TURN * 96 - 1,
            )
    api.sql("ANALYZE slots")
    rules = BookingRules(
        type_id=uuid.uuid4(),
        duration=timedelta(minutes=45),
        buffer_before=timedelta(0),
        buffer_after=timedelta(minutes=15),
        notice=timedelta(0),
        max_advance=None,
        max_per_day=None,
        change_notice=timedelta(0),
        slot_length=timedelta(minutes=Settings().slot_minutes),
    )
    now = clock.now()
    search = start_times.Search(start_from=START + timedelta(days=2), after=now, zone="UTC")
    sql, values, _ = start_times.compose_text(
        "postgresql", providers[3], rules, search, now, limit=101
    )
    statement, names = rawsql.positional(sql)

    async def explain(session: Any) -> list[str]:
        db = await plans.driver(session)
        rows = await db.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement, *(values[n] for n in names)
        )
        return [row[0] for row in rows]

    plan = api.in_session(explain)
    shown = "\n".join(plan)
    assert "Index Scan using uq_slots_provider_id_start_time" in shown, shown
    assert "Sort" not in shown, shown
