"""Start times of a weekly series around daylight-saving changes, against an oracle
computed here from the provider's slots and the wall-clock rule's Python side: on
both databases, in zones whose changes are an hour (Berlin, New York), half an hour
(Lord Howe) and two hours (Troll), with some later weeks' slots taken.

On PostgreSQL a page's later weeks are checked by shifting its starts, by pieces
where the zone's offset moves (`rules.weeks_later_pieces`), or, under a daily cap,
occurrence by occurrence: the cases below run across changes in the first week and
in later ones, and a test proves how many pieces each took and that the text in full
answers the same."""

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import start_times
from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.rules import BookingRules
from appointments.db import wall_clock_weeks_later
from appointments.pagination import Keyset
from tests import plans
from tests.api import Api, Json, every_item, every_start_page, iso
from tests.conftest import START

WEEK = timedelta(weeks=1)
SLOT = timedelta(minutes=15)
SPAN = 4  # a 45-minute type with 15 minutes after


@dataclass(frozen=True)
class Case:
    zone: str
    first: datetime  # the first week's stretch of slots begins here (UTC)
    hours: int  # each week's stretch
    count: int
    interval: int = 1
    # Whether every week's stretch keeps clear of the zone's change (one piece a week).
    steady: bool = True
    # The type's horizon (max_advance_days), if any.
    horizon_days: int | None = None

    @property
    def start_from(self) -> datetime:
        """The case's page: from a day before the first week's stretch ..."""
        return self.first - timedelta(days=1)

    @property
    def start_before(self) -> datetime:
        """... to a day after it."""
        return self.first + timedelta(days=1, hours=self.hours)

    def query(self) -> dict[str, str]:
        """The page's bounds as a listing's query."""
        return {"from": iso(self.start_from), "to": iso(self.start_before)}

    def series(self) -> dict[str, int]:
        """The series as a listing's query."""
        return {"repeat_count": self.count, "repeat_interval_weeks": self.interval}


CASES = {
    # Berlin springs forward on 2027-03-28 at 01:00 UTC: the fourth week's wall-clock
    # times are an hour earlier in UTC, its stretch far from the change.
    "berlin-shifted": Case("Europe/Berlin", datetime(2027, 3, 8, 5, tzinfo=UTC), 14, 4),
    # ... and here the fourth week's stretch runs across the change itself.
    "berlin-across": Case(
        "Europe/Berlin", datetime(2027, 3, 6, 20, tzinfo=UTC), 10, 4, steady=False
    ),
    # New York springs forward on 2027-03-14 at 07:00 UTC; every other week.
    "new-york-every-other-week": Case(
        "America/New_York", datetime(2027, 3, 2, 12, tzinfo=UTC), 12, 3, interval=2
    ),
    "new-york-across": Case(
        "America/New_York", datetime(2027, 3, 6, 23, tzinfo=UTC), 12, 2, interval=1, steady=False
    ),
    # Lord Howe falls back half an hour on 2027-04-03 at 15:00 UTC (02:00 -> 01:30).
    "lord-howe-shifted": Case("Australia/Lord_Howe", datetime(2027, 3, 15, 20, tzinfo=UTC), 12, 4),
    "lord-howe-across": Case(
        "Australia/Lord_Howe", datetime(2027, 3, 13, 10, tzinfo=UTC), 10, 4, steady=False
    ),
    # The fourth week's stretch runs across the spring change, and the horizon (2027-03-28
    # 08:00 UTC) through it, after the change.
    "berlin-across-horizon": Case(
        "Europe/Berlin", datetime(2027, 3, 6, 23, tzinfo=UTC), 12, 4, steady=False, horizon_days=27
    ),
    # The third week's stretch runs across Berlin's autumn change (2027-10-31 at 01:00
    # UTC), where the shift grows by an hour: the rival's hold there (00:30 UTC, the
    # first 02:30) lies in the span of starts before the change's piece only, not in
    # that of the starts just after it, which the hold would take moved back unshifted.
    "berlin-autumn-later-week": Case(
        "Europe/Berlin", datetime(2027, 10, 16, 18, 45, tzinfo=UTC), 10, 3, steady=False
    ),
    # Twelve weeks, the first one's stretch across Berlin's autumn change (2027-10-31 at
    # 01:00 UTC): every week has two pieces.
    "berlin-first-week-across": Case(
        "Europe/Berlin", datetime(2027, 10, 30, 20, tzinfo=UTC), 10, 12, steady=False
    ),
    # Troll goes from UTC+0 to UTC+2 on 2027-03-28 at 01:00 UTC.
    "troll-shifted": Case("Antarctica/Troll", datetime(2027, 3, 8, 6, tzinfo=UTC), 12, 4),
}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def setup(api: Api, case: Case) -> tuple[Json, Json]:
    """The case's stretches in every week of the series (and one week more), and a
    rival's holds on a few of the later weeks' slots."""
    provider = api.provider(timezone=case.zone)
    weeks = (case.count - 1) * case.interval + 1
    for week in range(weeks + 1):
        start = case.first + week * WEEK
        api.publish(provider["id"], start, start + timedelta(hours=case.hours))
    kind = api.appointment_type(
        provider["id"],
        duration_minutes=45,
        buffer_after_minutes=15,
        max_advance_days=case.horizon_days,
    )
    rival = api.customer("Eve", f"eve-{uuid.uuid4().hex[:8]}@example.com")
    taken = [
        case.first + case.interval * WEEK + timedelta(hours=2),
        case.first + (case.count - 1) * case.interval * WEEK + timedelta(hours=5, minutes=45),
    ]
    for moment in taken:
        assert api.reserve(rival["id"], api.slot_at(provider["id"], moment)).status_code == 201
    return provider, kind


def oracle(api: Api, case: Case, provider: Json, kind: Json, query: dict[str, str]) -> list[str]:
    """The plain starts whose every later occurrence (the wall-clock rule's Python side)
    has its whole span of slots open, within the horizon."""
    open_starts = {
        parse(slot["start_time"])
        for slot in every_item(api, f"/providers/{provider['id']}/availability", 100, status="all")
        if slot["status"] == "available"
    }
    expected = []
    for start in every_start_page(api, provider["id"], kind["id"], 100, **query):
        first = parse(start)
        occurrences = [
            wall_clock_weeks_later(first, case.zone, k * case.interval)
            for k in range(1, case.count)
        ]
        latest = None if case.horizon_days is None else START + timedelta(days=case.horizon_days)
        if all(
            occ is not None
            and all(occ + i * SLOT in open_starts for i in range(SPAN))
            and (latest is None or occ <= latest)
            for occ in occurrences
        ):
            expected.append(start)
    return expected


@pytest.mark.parametrize("name", CASES)
def test_series_starts_match_the_wall_clock_rule(api: Api, name: str) -> None:
    case = CASES[name]
    provider, kind = setup(api, case)
    query = case.query()
    expected = oracle(api, case, provider, kind, query)
    repeat = case.series()
    assert expected, "the case must leave some series to list"
    plain = every_start_page(api, provider["id"], kind["id"], 100, **query)
    assert len(expected) < len(plain)
    for limit in (100, 7):
        listed = every_start_page(api, provider["id"], kind["id"], limit, **query, **repeat)
        assert listed == expected, limit
    # The service's own search too, as pages of the reschedule and web paths take it
    # (PostgreSQL's listing above is its JSON page).
    assert _found(api, case, provider, kind, 7) == expected
    # A type under a daily cap (one it never reaches) is searched occurrence by
    # occurrence on PostgreSQL: the same starts.
    capped = api.appointment_type(
        provider["id"],
        duration_minutes=45,
        buffer_after_minutes=15,
        max_advance_days=case.horizon_days,
        max_per_day=1000,
    )
    assert every_start_page(api, provider["id"], capped["id"], 100, **query, **repeat) == expected


async def _search(
    api: Api, session: AsyncSession, case: Case, kind: Json
) -> tuple[BookingRules, start_times.Search]:
    """The type's rules and the search the case's page makes (a series of its weeks)."""
    found = await session.get(AppointmentType, uuid.UUID(kind["id"]))
    assert found is not None
    rules = BookingRules.of(found, api.client.app.state.settings)  # type: ignore[attr-defined]
    search = start_times.search_for(
        rules,
        case.zone,
        case.start_from,
        case.start_before,
        START,
        start_times.Repeat(case.count, case.interval),
    )
    return rules, search


def _found(api: Api, case: Case, provider: Json, kind: Json, limit: int) -> list[str]:
    """Every start `start_times.find` lists for the case's page, `limit` at a time."""

    async def run(session: AsyncSession) -> list[str]:
        rules, search = await _search(api, session, case, kind)
        starts: list[start_times.StartTime] = []
        cursor = None
        while True:
            page = await start_times.find(
                session, uuid.UUID(provider["id"]), rules, search, START, limit=limit, cursor=cursor
            )
            starts += page
            if len(page) < limit:
                return [iso(start.start_time) for start in starts]
            cursor = Keyset(at=page[-1].start_time, id=page[-1].slot_id)

    return api.in_session(run)


def _plan(
    api: Api,
    case: Case,
    provider: Json,
    kind: Json,
    *,
    generic: bool = False,
    by_occurrence: bool = True,
) -> Json:
    """PostgreSQL's EXPLAIN ANALYZE of the service's own statement for the case's page
    (its top node), the text with the weeks checked occurrence by occurrence unless
    `by_occurrence` is False (the text the service runs); with `generic`,
    of the plan PostgreSQL keeps for a prepared statement (`tests.plans`), left only
    nested loops to join by: the worst it may pick from estimates made without the
    values."""

    async def run(session: AsyncSession) -> Json:
        rules, search = await _search(api, session, case, kind)
        sql, params, _ = start_times.compose_text(
            "postgresql",
            uuid.UUID(provider["id"]),
            rules,
            search,
            START,
            limit=100,
            by_occurrence=by_occurrence,
        )
        if generic:
            joins = ("enable_hashjoin = off", "enable_mergejoin = off")
            return await plans.kept_plan(session, sql, params, joins)
        return await plans.explained(session, sql, params)

    return api.in_session(run)


def _per_occurrence(api: Api, case: Case, provider: Json, kind: Json) -> tuple[int, int]:
    """Rows of the page's per-occurrence step, and the page's candidates."""
    rows = {
        node["Subplan Name"]: int(node["Actual Rows"])
        for node in plans.nodes(_plan(api, case, provider, kind))
        if node.get("Subplan Name") in ("CTE occurrences", "CTE candidates")
    }
    return rows["CTE occurrences"], rows["CTE candidates"]


def test_postgresql_shifts_every_week_by_pieces(api: Api) -> None:
    """The service's text shifts every later week, across changes too: it has no
    per-occurrence step, and one piece a week where the weeks keep clear of a change,
    more where one runs across. The text in full checks every week occurrence by
    occurrence (the oracle test holds both to the same answers)."""
    if api.dialect != "postgresql":
        pytest.skip("the shifted page is PostgreSQL's")
    for name, case in CASES.items():
        provider, kind = setup(api, case)
        weeks = case.count - 1
        steps = {
            node.get("Subplan Name"): node
            for node in plans.nodes(_plan(api, case, provider, kind, by_occurrence=False))
        }
        assert "CTE occurrences" not in steps, name
        pieces = int(steps["CTE pieces"]["Actual Rows"])
        assert (pieces > weeks) == (not case.steady), (name, pieces)
        assert pieces >= weeks, (name, pieces)
        occurrences, candidates = _per_occurrence(api, case, provider, kind)
        assert candidates > 20, name
        assert occurrences == candidates * weeks, (name, occurrences, candidates)


@pytest.mark.parametrize("name", ["berlin-first-week-across", "berlin-across", "berlin-shifted"])
def test_the_kept_plan_of_a_series_page_stays_linear(api: Api, name: str) -> None:
    """The plan PostgreSQL keeps for a prepared statement is made without the values, so
    it prices the page's candidates at a row or so, and may join by nested loops. Even
    so, no step may pair every occurrence with every free span (as a join of the two
    once did under such a plan: 1,111 x 1,107 rows, 133 ms for a page of 100 across
    Berlin's change, against 3.4 ms since), whichever way the page's weeks are checked."""
    if api.dialect != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    case = CASES[name]
    provider, kind = setup(api, case)
    _, candidates = _per_occurrence(api, case, provider, kind)
    occurrences = candidates * (case.count - 1)
    for by_occurrence in (True, False):
        plan = _plan(api, case, provider, kind, generic=True, by_occurrence=by_occurrence)
        busiest = max(
            plans.nodes(plan), key=lambda node: node["Actual Rows"] * node["Actual Loops"]
        )
        assert busiest["Actual Rows"] * busiest["Actual Loops"] <= 4 * occurrences, busiest


def test_an_occurrence_off_the_slots_grid_is_never_listed(api: Api) -> None:
    """With 20-minute slots, Lord Howe's half-hour change puts every later occurrence
    of these starts between two slots: no series start is listed, though every slot
    around them is free (the week is neither shifted nor taken occurrence by occurrence
    as whole slots)."""
    api.configure(slot_minutes=20)
    provider = api.provider(timezone="Australia/Lord_Howe")
    first = datetime(2027, 3, 29, tzinfo=UTC)  # the change: 2027-04-03 15:00 UTC
    for week in range(2):
        start = first + week * WEEK
        api.publish(provider["id"], start, start + timedelta(hours=5))
    kind = api.appointment_type(provider["id"], duration_minutes=40)
    query = {"from": iso(first), "to": iso(first + timedelta(hours=4))}
    assert every_start_page(api, provider["id"], kind["id"], 100, **query)
    listed = every_start_page(api, provider["id"], kind["id"], 100, **query, repeat_count=2)
    assert listed == []


def test_a_page_near_a_missing_hour_takes_one_statement(api: Api) -> None:
    """Slots back to back around the day three weeks before Berlin springs forward: a
    4-week series' first page of 100 loses the four starts whose last occurrence would
    fall in the missing hour, and its first chunk is that much larger, so one statement
    fills it (`start_times.Chunks.of`), on either database."""
    case = Case("Europe/Berlin", datetime(2027, 3, 7, tzinfo=UTC), 30, 4)
    provider = api.provider(timezone=case.zone)
    for week in range(case.count):
        start = case.first + week * WEEK
        api.publish(provider["id"], start, start + timedelta(hours=case.hours))
    kind = api.appointment_type(provider["id"], duration_minutes=45, buffer_after_minutes=15)
    gap = [case.first + timedelta(hours=1, minutes=15 * i) for i in range(4)]  # 02:00-03:00 CET

    async def run(session: AsyncSession) -> tuple[list[datetime], int]:
        rules, search = await _search(api, session, case, kind)
        search = dataclasses.replace(search, start_from=case.first, start_before=None)
        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = await start_times.find(
                session, uuid.UUID(provider["id"]), rules, search, START, limit=100
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return [start.start_time for start in found], statements

    found, statements = api.in_session(run)
    assert len(found) == 100
    assert found[0] == case.first
    assert not set(gap) & set(found)
    assert found[-1] == case.first + (100 + len(gap) - 1) * SLOT
    assert statements == 1
