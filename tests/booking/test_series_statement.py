"""The one-statement series (PostgreSQL): it holds every week of a free plain series by
itself, and writes nothing at all when one week does not pass (the step path answers
then), so the API's answers are the step path's either way."""

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.rules import BookingRules
from appointments.booking import series_statement
from tests.api import Api
from tests.conftest import START

WEEK = timedelta(weeks=1)
FIRST = START + timedelta(days=3, hours=2)


def plain(
    api: Api, client: str, slot: str, count: int, rules: BookingRules | None = None
) -> series_statement.Weekly:
    settings = api.client.app.state.settings  # type: ignore[attr-defined]
    return series_statement.Weekly(
        series_id=uuid.uuid4(),
        client_id=uuid.UUID(client),
        slot_id=uuid.UUID(slot),
        interval_weeks=1,
        count=count,
        policy="all",
        now=START,
        expires_at=START + timedelta(minutes=30),
        max_holds=5,
        rules=rules or BookingRules.plain(settings),
    )


def typed(api: Api, provider: str, **fields: Any) -> BookingRules:
    settings = api.client.app.state.settings  # type: ignore[attr-defined]
    kind = api.appointment_type(provider, **fields)["id"]

    async def terms(session: AsyncSession) -> BookingRules:
        found = await session.get(AppointmentType, uuid.UUID(kind))
        assert found is not None
        return BookingRules.of(found, settings)

    return api.in_session(terms)


def hold(api: Api, terms: series_statement.Weekly) -> bool:
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
        terms = dataclasses.replace(terms, now=START + timedelta(hours=1))
    else:
        terms = dataclasses.replace(terms, max_holds=0)
    before = api.sql("SELECT count(*) FROM reservations")
    assert not hold(api, terms)
    assert api.sql("SELECT count(*) FROM series") == [(0,)]
    assert api.sql("SELECT count(*) FROM reservations") == before
    reserved = api.sql("SELECT count(*) FROM slots WHERE status = 'reserved'")
    assert reserved == [(1 if obstacle in ("taken", "run_out_hold") else 0,)]


def test_a_typed_series_is_held_with_its_buffers(api: Api) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement series is PostgreSQL's")
    provider = api.provider()["id"]
    rules = typed(api, provider, duration_minutes=30, buffer_after_minutes=15)
    for k in range(3):
        day = FIRST + k * WEEK
        api.publish(provider, day, day + timedelta(minutes=60))
    first = api.ok("GET", f"/providers/{provider}/availability")["items"][0]["id"]
    terms = plain(api, api.customer()["id"], first, 3, rules)
    assert hold(api, terms)
    rows = api.sql(
        "SELECT r.start_time, r.end_time, r.occupied_end, count(l.slot_id) FROM reservations r"
        " JOIN reservation_slots l ON l.reservation_id = r.id"
        " WHERE r.series_id = :id GROUP BY r.id ORDER BY r.start_time",
        id=terms.series_id,
    )
    assert rows == [
        (
            FIRST + k * WEEK,
            FIRST + k * WEEK + timedelta(minutes=30),
            FIRST + k * WEEK + timedelta(minutes=45),
            3,
        )
        for k in range(3)
    ]
    # Each week's fourth slot stays free.
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'available'") == [(3,)]


def test_a_type_past_its_horizon_or_with_a_cap_is_left_to_the_steps(api: Api) -> None:
    if api.dialect != "postgresql":
        pytest.skip("the one-statement series is PostgreSQL's")
    provider = api.provider()["id"]
    slots = [api.slot(provider, FIRST + k * WEEK) for k in range(3)]
    near = typed(api, provider, duration_minutes=15, max_advance_days=10)
    assert not hold(api, plain(api, api.customer()["id"], slots[0]["id"], 3, near))
    assert api.sql("SELECT count(*) FROM series") == [(0,)]
    capped = typed(api, provider, name="Capped", duration_minutes=15, max_per_day=2)
    assert not series_statement.takes(capped)
