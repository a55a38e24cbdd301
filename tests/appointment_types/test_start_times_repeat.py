"""Start times with `repeat_count`: only starts where every weekly occurrence is
bookable, on SQLite and PostgreSQL, and each one listed can be booked as a series."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import start_times
from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.rules import BookingRules
from appointments.clock import FrozenClock
from tests import plans
from tests.api import Api, Json, every_start_page, iso
from tests.conftest import START

WEEK = timedelta(weeks=1)
MONDAY = START + timedelta(days=7, hours=1)  # 2027-03-08 09:00 UTC


def window(api: Api, provider_id: str, start: datetime, hours: float) -> None:
    api.publish(provider_id, start, start + timedelta(hours=hours))


def starts(api: Api, provider_id: str, type_id: str, **query: object) -> list[str]:
    path = f"/providers/{provider_id}/appointment-types/{type_id}/availability"
    page = api.ok("GET", path, params={"limit": 100, **query})
    return [item["start_time"] for item in page["items"]]


def at(first: datetime, *minutes: int) -> list[str]:
    return [iso(first + timedelta(minutes=m)) for m in minutes]


@pytest.fixture
def weekly(api: Api) -> tuple[Json, Json]:
    """Three Mondays: 09:00-11:00, 09:00-10:00, 09:00-11:00; a 30-minute type."""
    provider = api.provider()
    window(api, provider["id"], MONDAY, 2)
    window(api, provider["id"], MONDAY + WEEK, 1)
    window(api, provider["id"], MONDAY + 2 * WEEK, 2)
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    return provider, kind


def test_only_starts_whose_every_occurrence_is_free(api: Api, weekly: tuple[Json, Json]) -> None:
    provider, kind = weekly
    first_week = {"to": iso(MONDAY + timedelta(days=1))}
    plain = starts(api, provider["id"], kind["id"], **first_week)
    assert plain == at(MONDAY, 0, 15, 30, 45, 60, 75, 90)
    repeated = starts(api, provider["id"], kind["id"], repeat_count=3, **first_week)
    assert repeated == at(MONDAY, 0, 15, 30)
    # A booking in the third week takes out the starts whose span it overlaps.
    rival = api.customer("Eve", "eve@example.com")
    taken = api.slot_at(provider["id"], MONDAY + 2 * WEEK + timedelta(minutes=15))
    assert api.reserve(rival["id"], taken).status_code == 201
    repeated = starts(api, provider["id"], kind["id"], repeat_count=3, **first_week)
    assert repeated == at(MONDAY, 30)
    # Every other week skips the short second one.
    skipping = starts(
        api, provider["id"], kind["id"], repeat_count=2, repeat_interval_weeks=2, **first_week
    )
    assert skipping == at(MONDAY, 30, 45, 60, 75, 90)


def test_pages_of_any_size_list_the_same_starts(api: Api, weekly: tuple[Json, Json]) -> None:
    """Small pages make each page's first candidates fail or pass in every mix (PostgreSQL
    checks a page's candidates together and goes on one by one after a refusal)."""
    provider, kind = weekly
    week = {"to": iso(MONDAY + timedelta(days=1)), "repeat_count": 3}
    taken = api.slot_at(provider["id"], MONDAY + 2 * WEEK + timedelta(minutes=75))
    assert api.reserve(api.customer("Eve", "eve@example.com")["id"], taken).status_code == 201
    whole = starts(api, provider["id"], kind["id"], **week)
    # 09:00-10:00 the second week; the third's 10:15 taken: 09:00 to 09:30 pass.
    assert whole == at(MONDAY, 0, 15, 30)
    for limit in range(1, 5):
        assert every_start_page(api, provider["id"], kind["id"], limit, **week) == whole, limit
    # Later weeks that refuse the first candidates and pass later ones.
    early = api.slot_at(provider["id"], MONDAY + WEEK)
    assert api.reserve(api.customer("Ann", "ann@example.com")["id"], early).status_code == 201
    whole = starts(api, provider["id"], kind["id"], **week)
    assert whole == at(MONDAY, 15, 30)
    for limit in range(1, 5):
        assert every_start_page(api, provider["id"], kind["id"], limit, **week) == whole, limit


def test_each_listed_start_books_as_a_series(api: Api, weekly: tuple[Json, Json]) -> None:
    provider, kind = weekly
    customer = api.customer()
    listed = starts(
        api, provider["id"], kind["id"], repeat_count=3, to=iso(MONDAY + timedelta(days=1))
    )
    first = api.slot_at(provider["id"], datetime.fromisoformat(listed[-1]))
    series = api.ok(
        "POST",
        f"/clients/{customer['id']}/series",
        201,
        json={
            "slot_id": first,
            "appointment_type_id": kind["id"],
            "repeat": {"count": 3},
        },
    )
    assert len(series["reservations"]) == 3


def test_a_group_series_joins_later_weeks_open_sessions(
    api: Api, weekly: tuple[Json, Json]
) -> None:
    """A group type's series is listed where each week has a seat: a free span, or an
    open session of the type at that time; `seats_left` is the fewest of any week."""
    provider, _ = weekly
    kind = api.appointment_type(provider["id"], name="Class", duration_minutes=30, capacity=3)
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability"
    week = {"to": iso(MONDAY + timedelta(days=1)), "repeat_count": 3, "limit": 100}

    def listed() -> list[tuple[str, int]]:
        items = api.ok("GET", path, params=week)["items"]
        return [(item["start_time"], item["seats_left"]) for item in items]

    assert listed() == [(s, 3) for s in at(MONDAY, 0, 15, 30)]
    # Someone opens the second week's 09:00 session (one seat): 09:00 stays listed,
    # with 2 seats; 09:15 overlaps that session without being it, and goes.
    second = api.slot_at(provider["id"], MONDAY + WEEK)
    joined = api.reserve_type(api.customer("Eve", "eve@example.com")["id"], second, kind["id"])
    assert joined.status_code == 201, joined.text
    assert listed() == [(at(MONDAY, 0)[0], 2), (at(MONDAY, 30)[0], 3)]
    # The first week's 09:30 session (two seats) is a start of its own, with 1 left.
    third = api.slot_at(provider["id"], MONDAY + timedelta(minutes=30))
    body = {"slot_id": third, "appointment_type_id": kind["id"], "seats": 2}
    ann = api.customer("Ann", "ann@example.com")["id"]
    assert api.client.post(f"/clients/{ann}/reserve", json=body).status_code == 201
    assert listed() == [(at(MONDAY, 0)[0], 2), (at(MONDAY, 30)[0], 1)]
    # What is listed books: the series joins the second week's session.
    bob = api.customer("Bob", "bob@example.com")["id"]
    first = api.slot_at(provider["id"], MONDAY)
    series = api.ok(
        "POST",
        f"/clients/{bob}/series",
        201,
        json={"slot_id": first, "appointment_type_id": kind["id"], "repeat": {"count": 3}},
    )
    sessions = {r["session_id"] for r in series["reservations"]}
    assert joined.json()["session_id"] in sessions
    assert listed() == [(at(MONDAY, 0)[0], 1), (at(MONDAY, 30)[0], 1)]


def test_the_horizon_applies_to_every_occurrence(api: Api) -> None:
    provider = api.provider()
    for week in range(3):
        window(api, provider["id"], MONDAY + week * WEEK, 1)
    # The horizon ends on the second Monday, 2027-03-16 08:00.
    kind = api.appointment_type(provider["id"], duration_minutes=15, max_advance_days=15)
    plain = starts(api, provider["id"], kind["id"])
    assert plain == at(MONDAY, 0, 15, 30, 45) + at(MONDAY + WEEK, 0, 15, 30, 45)
    # A second Monday's series would end past it; so would a third week from the first.
    assert starts(api, provider["id"], kind["id"], repeat_count=2) == at(MONDAY, 0, 15, 30, 45)
    assert starts(api, provider["id"], kind["id"], repeat_count=3) == []


def test_occurrences_keep_the_wall_clock_time_in_the_providers_zone(api: Api) -> None:
    provider = api.provider(timezone="Europe/Berlin")
    first = datetime(2027, 3, 22, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (UTC+1)
    window(api, provider["id"], first, 1)
    window(api, provider["id"], first + WEEK - timedelta(hours=1), 0.5)  # 10:00 (UTC+2)
    kind = api.appointment_type(provider["id"], duration_minutes=15)
    listed = starts(api, provider["id"], kind["id"], repeat_count=2, to=iso(first + WEEK / 2))
    assert listed == at(first, 0, 15)


@pytest.mark.parametrize(
    "query",
    [{"repeat_count": 1}, {"repeat_count": 53}, {"repeat_count": 2, "repeat_interval_weeks": 5}],
)
def test_bad_repeats_are_refused(
    api: Api, weekly: tuple[Json, Json], query: dict[str, int]
) -> None:
    provider, kind = weekly
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability"
    response = api.client.get(path, params=query)
    assert response.status_code == 422, response.text


def test_the_daily_cap_applies_to_every_occurrence(api: Api) -> None:
    provider = api.provider()
    for week in range(3):
        window(api, provider["id"], MONDAY + week * WEEK, 1)
    kind = api.appointment_type(provider["id"], duration_minutes=30, max_per_day=1)
    rival = api.customer("Eve", "eve@example.com")
    second_monday = api.slot_at(provider["id"], MONDAY + WEEK + timedelta(minutes=30))
    assert api.reserve_type(rival["id"], second_monday, kind["id"]).status_code == 201
    first_week = {"to": iso(MONDAY + timedelta(days=1))}
    assert starts(api, provider["id"], kind["id"], **first_week) == at(MONDAY, 0, 15, 30)
    # The second Monday has its one appointment of the type: no weekly series fits.
    assert starts(api, provider["id"], kind["id"], repeat_count=2, **first_week) == []
    # Every other week passes it by.
    fortnightly = starts(
        api, provider["id"], kind["id"], repeat_count=2, repeat_interval_weeks=2, **first_week
    )
    assert fortnightly == at(MONDAY, 0, 15, 30)


def test_a_listing_stops_where_no_series_can_end_and_misses_nothing(api: Api) -> None:
    """A start later than its series' length before the provider's last slot cannot have
    its last occurrence: the search stops there (no cursor), having listed every start
    before it, whatever the page size."""
    provider = api.provider()
    for day in range(33):  # 09:00-11:00 every day for almost five weeks
        window(api, provider["id"], MONDAY + timedelta(days=day), 2)
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    last_slot = MONDAY + timedelta(days=32, hours=1, minutes=45)
    plain = every_start_page(api, provider["id"], kind["id"], 100)
    assert plain[-1] == iso(last_slot - timedelta(minutes=15))
    for count in (2, 3, 4):
        # Every occurrence free: the series' starts are the plain ones whose last
        # occurrence's two slots exist.
        latest = last_slot - (count - 1) * WEEK - timedelta(minutes=15)
        expected = [start for start in plain if datetime.fromisoformat(start) <= latest]
        assert len(expected) > 8 * 7, count
        for limit in (100, 23):
            listed = every_start_page(api, provider["id"], kind["id"], limit, repeat_count=count)
            assert listed == expected, (count, limit)
    assert every_start_page(api, provider["id"], kind["id"], 100, repeat_count=6) == []


async def _series_search(
    api: Api, session: AsyncSession, provider: Json, kind: Json, count: int
) -> tuple[str, dict[str, object], Any]:
    """The service's own search text for the first page of `count`-week series from
    MONDAY, its values and its parameters' types."""
    found = await session.get(AppointmentType, uuid.UUID(kind["id"]))
    assert found is not None
    rules = BookingRules.of(found, api.client.app.state.settings)  # type: ignore[attr-defined]
    search = start_times.search_for(rules, "UTC", MONDAY, None, START, start_times.Repeat(count))
    return start_times.compose_text(
        api.dialect, uuid.UUID(provider["id"]), rules, search, START, limit=100
    )


def test_sqlite_probes_each_occurrence_by_the_index(api: Api) -> None:
    """SQLite checks a series' occurrences one by one: each probe must be a range of
    the index on (provider, start), not every slot of the provider read and its time
    parsed (which made a page of 264 slots take 1.1 s; 14 ms since)."""
    if api.dialect != "sqlite":
        pytest.skip("the per-occurrence probes' plan is SQLite's")
    provider = api.provider()
    window(api, provider["id"], MONDAY, 2)
    kind = api.appointment_type(provider["id"], duration_minutes=30)

    async def plan(session: AsyncSession) -> list[str]:
        sql, params, typed = await _series_search(api, session, provider, kind, 3)
        statement = text("EXPLAIN QUERY PLAN " + sql).bindparams(
            *(bindparam(name, type_=kind_()) for name, kind_ in typed)
        )
        return [row[3] for row in (await session.execute(statement, params)).all()]

    steps = api.in_session(plan)
    probes = [step for step in steps if step.startswith("SEARCH s ")]
    assert probes, steps
    assert all("(provider_id=? AND start_time>? AND start_time<?)" in p for p in probes), probes


def test_postgresql_reads_no_slot_where_no_series_could_end(api: Api) -> None:
    """Six weeks asked of a provider with five: the page reads the last slot's start
    and no start to check, where it used to read every slot and check each start's
    later weeks (990 slot rows read, 100 candidates)."""
    if api.dialect != "postgresql":
        pytest.skip("EXPLAIN ANALYZE is PostgreSQL's")
    provider = api.provider()
    for day in range(33):
        window(api, provider["id"], MONDAY + timedelta(days=day), 2)
    kind = api.appointment_type(provider["id"], duration_minutes=30)

    async def explain(session: AsyncSession) -> Json:
        sql, params, _ = await _series_search(api, session, provider, kind, 6)
        return await plans.explained(session, sql, params)

    steps = plans.nodes(api.in_session(explain))
    (candidates,) = [s for s in steps if s.get("Subplan Name") == "CTE candidates"]
    assert candidates["Actual Rows"] == 0
    # The last slot's start: one row by the index, or (the planner's choice on a small
    # table) one pass over the provider's 264 slots; never a pass per week or start.
    read = [
        s["Actual Rows"] * s["Actual Loops"] for s in steps if s.get("Relation Name") == "slots"
    ]
    assert sum(read) <= 33 * 8, read


def test_starts_after_many_refused_ones_are_found(api: Api) -> None:
    """The first dozen starts fail their second week: a page of two still lists the
    ones after them (SQLite checks a chunk of starts at a time and goes on)."""
    provider = api.provider()
    window(api, provider["id"], MONDAY, 4)  # 09:00-13:00
    window(api, provider["id"], MONDAY + WEEK + timedelta(hours=3), 1)  # 12:00-13:00
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    expected = at(MONDAY + timedelta(hours=3), 0, 15, 30)
    for limit in (1, 2, 100):
        listed = every_start_page(api, provider["id"], kind["id"], limit, repeat_count=2)
        assert listed == expected, limit


@pytest.mark.parametrize("cap", [None, 10], ids=["shifted", "by-occurrence"])
def test_later_weeks_read_every_state_of_a_slot(
    api: Api, clock: FrozenClock, cap: int | None
) -> None:
    """The second week published as two windows back to back (two runs on PostgreSQL,
    a span across them still whole); the third with a withdrawn slot, a busy one and a
    hold, which frees its slot once it runs out, unswept. A daily cap makes PostgreSQL
    check every week occurrence by occurrence instead of shifting them."""
    provider = api.provider()
    window(api, provider["id"], MONDAY, 2)
    window(api, provider["id"], MONDAY + WEEK + timedelta(hours=1), 1)
    window(api, provider["id"], MONDAY + WEEK, 1)
    third = MONDAY + 2 * WEEK
    window(api, provider["id"], third, 2)
    kind = api.appointment_type(provider["id"], duration_minutes=30, max_per_day=cap)
    week = {"to": iso(MONDAY + timedelta(days=1)), "repeat_count": 3}
    assert starts(api, provider["id"], kind["id"], **week) == at(MONDAY, *range(0, 91, 15))
    withdrawn = api.client.delete(
        f"/providers/{provider['id']}/availability",
        params={
            "from": iso(third + timedelta(minutes=15)),
            "to": iso(third + timedelta(minutes=30)),
        },
    )
    assert withdrawn.json()["removed"] == 1
    busy = api.db_id(api.slot_at(provider["id"], third + timedelta(hours=1)))
    api.sql("UPDATE slots SET busy = true WHERE id = :id", id=busy)
    held = api.slot_at(provider["id"], third + timedelta(minutes=90))
    assert api.reserve(api.customer()["id"], held).status_code == 201
    assert starts(api, provider["id"], kind["id"], **week) == at(MONDAY, 30)
    clock.advance(seconds=30 * 60)
    assert starts(api, provider["id"], kind["id"], **week) == at(MONDAY, 30, 75, 90)


def test_sparse_starts_over_months_are_all_found(api: Api) -> None:
    """Open an hour a day for five weeks, then not for six, then three weeks more: a
    page of a 2-week series reaches past the four weeks PostgreSQL shifts at once (the
    chunk's later starts wait for the next one) and across the empty weeks; every start
    whose next week is free too is listed, in pages of any size."""
    provider = api.provider()
    for day in (*range(35), *range(77, 98)):
        window(api, provider["id"], MONDAY + timedelta(days=day), 1)
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    plain = every_start_page(api, provider["id"], kind["id"], 100)
    listed = set(plain)
    expected = [
        start
        for start in plain
        if iso(datetime.fromisoformat(start.replace("Z", "+00:00")) + WEEK) in listed
    ]
    assert len(expected) == 3 * (28 + 14)
    for limit in (100, 9):
        assert every_start_page(api, provider["id"], kind["id"], limit, repeat_count=2) == expected
