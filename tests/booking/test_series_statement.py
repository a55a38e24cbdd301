"""The one-statement series (PostgreSQL): it holds every week of a free plain series by
itself, and writes nothing at all when one week does not pass (the step path answers
then), so the API's answers are the step path's either way."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking import series_statement
from tests.api import Api
from tests.conftest import START

WEEK = timedelta(weeks=1)
FIRST = START + timedelta(days=3, hours=2)


def plain(api: Api, client: str, slot: str, count: int) -> series_statement.Plain:
    return series_statement.Plain(
        series_id=uuid.uuid4(),
        client_id=uuid.UUID(client),
        slot_id=uuid.UUID(slot),
        interval_weeks=1,
        count=count,
        policy="all",
        now=START,
        bookable_after=START + timedelta(days=1),
        expires_at=START + timedelta(minutes=30),
        max_holds=5,
    )


def hold(api: Api, terms: series_statement.Plain) -> bool:
    async def run(session: AsyncSession) -> bool:
        return await series_statement.hold_every_week(session, terms)

    return api.in_session(run)


def test_every_free_week_is_held_by_the_statement(api: Api) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement series is PostgreSQL's")
    provider = api.provider(timezone="Europe/Berlin")["id"]
    # Across the change to summer time (28 March): the same wall-clock hour.
    starts = [FIRST + k * WEEK - timedelta(hours=1 if k >= 4 else 0) for k in range(6)]
    slots = [api.slot(provider, start) for start in starts]
    bob = api.customer()["id"]
    terms = plain(api, bob, slots[0]["id"], 6)
    assert hold(api, terms)
    rows = api.sql(
        "SELECT r.start_time, r.series_start = r.start_time, r.status, s.status"
        " FROM reservations r JOIN slots s ON s.id = r.slot_id"
        " JOIN reservation_slots l ON l.reservation_id = r.id AND l.slot_id = s.id"
        " WHERE r.series_id = :id ORDER BY r.start_time",
        id=terms.series_id,
    )
    assert [row[0] for row in rows] == starts
    assert {row[1:] for row in rows} == {(True, "held", "reserved")}
    held = api.sql("SELECT count(*) FROM events WHERE type = 'reservation.held'")
    assert held == [(6,)]
    assert api.sql("SELECT count(*) FROM series") == [(1,)]


@pytest.mark.parametrize("obstacle", ["taken", "missing", "busy", "run_out_hold", "limit"])
def test_a_week_that_does_not_pass_writes_nothing(api: Api, obstacle: str) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement series is PostgreSQL's")
    provider = api.provider()["id"]
    slots = [api.slot(provider, FIRST + k * WEEK) for k in range(3)]
    bob, eve = api.customer()["id"], api.customer("Eve", "eve@example.com")["id"]
    terms = plain(api, bob, slots[0]["id"], 3)
    if obstacle == "taken":
        assert api.reserve(eve, slots[2]["id"]).status_code == 201
    elif obstacle == "missing":
        terms = plain(api, bob, slots[0]["id"], 4)
    elif obstacle == "busy":
        api.sql("UPDATE slots SET busy = true WHERE id = :id", id=uuid.UUID(slots[1]["id"]))
    elif obstacle == "run_out_hold":
        assert api.reserve(eve, slots[1]["id"]).status_code == 201
        terms = series_statement.Plain(**{**terms.__dict__, "now": START + timedelta(hours=1)})
    else:
        terms = series_statement.Plain(**{**terms.__dict__, "max_holds": 0})
    before = api.sql("SELECT count(*) FROM reservations")
    assert not hold(api, terms)
    assert api.sql("SELECT count(*) FROM series") == [(0,)]
    assert api.sql("SELECT count(*) FROM reservations") == before
    reserved = api.sql("SELECT count(*) FROM slots WHERE status = 'reserved'")
    assert reserved == [(1 if obstacle in ("taken", "run_out_hold") else 0,)]
