"""The standing week through the API, on SQLite and PostgreSQL: weekly hours kept
published to the horizon, rolled forward day after day, date overrides, time off,
bookings never stranded, and windows published by hand left alone."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appointments.availability.schedule_roll import roll_all
from appointments.clock import FrozenClock
from tests.api import Api, iso
from tests.conftest import START

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_NINE = {"weekday": "mon", "start": "09:00", "end": "10:00"}
WEEKDAYS_9_TO_5 = [
    {"weekday": day, "start": "09:00", "end": "17:00"}
    for day in ("mon", "tue", "wed", "thu", "fri")
]


def put_schedule(api: Api, provider: str, status: int = 200, **body: Any) -> Any:
    params = {"on_conflict": body.pop("on_conflict")} if "on_conflict" in body else {}
    return api.ok("PUT", f"/providers/{provider}/schedule", status, json=body, params=params)


def local_starts(api: Api, provider: str, zone: ZoneInfo = BERLIN) -> list[datetime]:
    """Every slot the provider has (not withdrawn), as local times, by start."""
    found = []
    cursor = None
    while True:
        params = {"status": "all", "limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = api.ok("GET", f"/providers/{provider}/availability", params=params)
        found += [datetime.fromisoformat(s["start_time"]).astimezone(zone) for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def per_day(starts: list[datetime]) -> dict[date, tuple[str, str, int]]:
    """Each local date's first start, last start and slot count."""
    days: dict[date, list[datetime]] = {}
    for start in starts:
        days.setdefault(start.date(), []).append(start)
    return {d: (f"{s[0]:%H:%M}", f"{s[-1]:%H:%M}", len(s)) for d, s in days.items()}


def roll(api: Api) -> Any:
    app: Any = api.client.app

    async def run() -> Any:
        return await roll_all(app.state.sessionmaker, app.state.settings, app.state.clock.now())

    portal = api.client.portal
    assert portal is not None
    return portal.call(run)


@pytest.fixture
def ada(api: Api) -> str:
    provider: str = api.provider("Dr Ada", timezone="Europe/Berlin")["id"]
    return provider


def test_weekly_hours_are_published_to_the_horizon_and_read_back(api: Api, ada: str) -> None:
    answer = put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=14)
    # Monday 1 March 2027, 09:00 Berlin is 08:00 UTC: today, still ahead of "now".
    assert answer["published_through"] == "2027-03-15"
    assert answer["timezone"] == "Europe/Berlin"
    days = per_day(local_starts(api, ada))
    weekdays = [d for d in days if d.weekday() < 5]
    assert sorted(days) == weekdays  # nothing at weekends
    assert len(weekdays) == 11  # 1 to 15 March: eleven weekdays
    assert set(days.values()) == {("09:00", "16:45", 32)}
    assert answer["change"]["created"] == 11 * 32
    read = api.ok("GET", f"/providers/{ada}/schedule")
    assert read["rules"] == WEEKDAYS_9_TO_5
    assert read["horizon_days"] == 14
    assert read["change"] is None
    # The same schedule again: nothing to do.
    again = put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=14)
    assert again["change"] == {"created": 0, "removed": 0, "cancelled": [], "moved": []}
    # A shorter horizon withdraws what lies past it.
    shorter = put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=7)
    assert shorter["published_through"] == "2027-03-08"
    assert shorter["change"]["removed"] == 5 * 32  # 9 to 15 March: five weekdays
    assert max(per_day(local_starts(api, ada))) == date(2027, 3, 8)


def published_by(api: Api, trigger: str) -> float:
    """The counter of slots the schedules published, as /metrics shows it."""
    text = api.client.get("/metrics").text
    key = f'appointments_schedule_slots_total{{action="published",trigger="{trigger}"}} '
    return sum(float(line[len(key) :]) for line in text.splitlines() if line.startswith(key))


def test_the_roll_publishes_each_new_day_once(api: Api, ada: str, clock: FrozenClock) -> None:
    changed, rolled_before = published_by(api, "change"), published_by(api, "roll")
    put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=14)
    assert published_by(api, "change") - changed == 11 * 32
    before = len(local_starts(api, ada))
    assert roll(api).created == 0  # published through today's horizon already
    clock.advance(days=2)  # Wednesday: the horizon reaches Wednesday 17 March
    rolled = roll(api)
    assert (rolled.providers, rolled.created) == (1, 2 * 32)
    assert roll(api).created == 0
    assert published_by(api, "roll") - rolled_before == 2 * 32
    starts = local_starts(api, ada)
    assert len(starts) == before + 2 * 32
    assert len(set(starts)) == len(starts)
    assert api.ok("GET", f"/providers/{ada}/schedule")["published_through"] == "2027-03-17"


def test_a_changed_schedule_republishes_only_what_it_published(api: Api, ada: str) -> None:
    put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=7)
    # A Saturday window published by hand, and a Tuesday evening one inside nothing.
    saturday = datetime(2027, 3, 6, 10, tzinfo=BERLIN)
    api.publish(ada, saturday, saturday + timedelta(hours=1))
    # A window over Wednesday's schedule time makes those slots the window's.
    wednesday = datetime(2027, 3, 3, 9, tzinfo=BERLIN)
    api.publish(ada, wednesday, wednesday + timedelta(hours=1))
    # Mornings only now.
    mornings = [{**rule, "end": "12:00"} for rule in WEEKDAYS_9_TO_5]
    change = put_schedule(api, ada, rules=mornings, horizon_days=7)["change"]
    days = per_day(local_starts(api, ada))
    assert days[date(2027, 3, 6)] == ("10:00", "10:45", 4)  # the hand-published window
    assert days[date(2027, 3, 2)] == ("09:00", "11:45", 12)
    assert days[date(2027, 3, 3)] == ("09:00", "11:45", 12)
    assert change["removed"] == 6 * 20  # six weekdays (1 to 8 March) lost 12:00-17:00
    # No schedule at all: the hand-published slots stay, and so do the schedule's.
    api.ok("DELETE", f"/providers/{ada}/schedule", 204)
    assert per_day(local_starts(api, ada)) == days
    api.ok("GET", f"/providers/{ada}/schedule", 404)


def test_an_override_beats_its_weekday_and_deleting_it_restores_it(api: Api, ada: str) -> None:
    put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=14)
    path = f"/providers/{ada}/schedule/overrides"
    short = api.ok(
        "PUT",
        f"{path}/2027-03-04",
        json={
            "intervals": [{"start": "10:00", "end": "12:00"}, {"start": "14:00", "end": "15:00"}]
        },
    )
    assert short["date"] == "2027-03-04"
    assert short["change"]["removed"] == 32 - 12
    assert per_day(local_starts(api, ada))[date(2027, 3, 4)] == ("10:00", "14:45", 12)
    # A Saturday opened, a Friday closed.
    api.ok("PUT", f"{path}/2027-03-06", json={"intervals": [{"start": "08:00", "end": "09:00"}]})
    api.ok("PUT", f"{path}/2027-03-05", json={"intervals": []})
    days = per_day(local_starts(api, ada))
    assert days[date(2027, 3, 6)] == ("08:00", "08:45", 4)
    assert date(2027, 3, 5) not in days
    listed = api.ok("GET", path, params={"from": "2027-03-05", "limit": 1})
    assert [o["date"] for o in listed["items"]] == ["2027-03-05"]
    rest = api.ok("GET", path, params={"cursor": listed["next_cursor"], "limit": 5})
    assert [o["date"] for o in rest["items"]] == ["2027-03-06"]
    assert rest["next_cursor"] is None
    # Deleting them restores the weekdays' hours (and closes the Saturday again).
    for day in ("2027-03-04", "2027-03-05", "2027-03-06"):
        api.ok("DELETE", f"{path}/{day}")
    days = per_day(local_starts(api, ada))
    assert days[date(2027, 3, 4)] == days[date(2027, 3, 5)] == ("09:00", "16:45", 32)
    assert date(2027, 3, 6) not in days
    api.ok("DELETE", f"{path}/2027-03-04", 404)


def test_time_off_spanning_weeks_is_one_entry(api: Api, ada: str, clock: FrozenClock) -> None:
    put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=30)
    # A hand-published Saturday inside the time off goes too.
    saturday = datetime(2027, 3, 13, 10, tzinfo=BERLIN)
    api.publish(ada, saturday, saturday + timedelta(hours=1))
    away = api.ok(
        "POST",
        f"/providers/{ada}/time-off",
        201,
        json={
            "start_time": iso(datetime(2027, 3, 8, 12, tzinfo=BERLIN)),
            "end_time": iso(datetime(2027, 3, 22, 0, tzinfo=BERLIN)),
            "reason": "Conference, then holiday",
        },
    )
    assert away["change"]["removed"] == 20 + 9 * 32 + 4
    days = per_day(local_starts(api, ada))
    assert days[date(2027, 3, 8)] == ("09:00", "11:45", 12)
    assert not [d for d in days if date(2027, 3, 9) <= d <= date(2027, 3, 21)]
    assert days[date(2027, 3, 22)] == ("09:00", "16:45", 32)
    # The roll publishes nothing inside it either.
    clock.advance(days=1)
    roll(api)
    assert not [
        d for d in per_day(local_starts(api, ada)) if date(2027, 3, 9) <= d <= date(2027, 3, 21)
    ]
    listed = api.ok("GET", f"/providers/{ada}/time-off")
    assert [t["reason"] for t in listed["items"]] == ["Conference, then holiday"]
    # Back at work: the schedule publishes there again; the hand-made Saturday does not return.
    back = api.ok("DELETE", f"/providers/{ada}/time-off/{away['id']}")
    assert back["created"] == 20 + 9 * 32
    days = per_day(local_starts(api, ada))
    assert days[date(2027, 3, 10)] == ("09:00", "16:45", 32)
    assert date(2027, 3, 13) not in days
    api.ok("DELETE", f"/providers/{ada}/time-off/{away['id']}", 404)


def booked_at(api: Api, provider: str, when: datetime) -> tuple[str, str]:
    client = api.customer("Bob", f"bob{when:%d%H%M}@example.com")["id"]
    slot = api.slot_at(provider, when.astimezone(UTC))
    held = api.reserve(client, slot)
    assert held.status_code == 201, held.text
    api.confirm(client, held.json()["id"])
    return client, held.json()["id"]


@pytest.mark.parametrize("change", ["schedule", "override", "time_off"])
def test_changes_never_strand_a_booking(api: Api, ada: str, change: str) -> None:
    put_schedule(api, ada, rules=WEEKDAYS_9_TO_5, horizon_days=14)
    afternoon = datetime(2027, 3, 4, 15, tzinfo=BERLIN)
    client, booking = booked_at(api, ada, afternoon)
    mornings = [{**rule, "end": "12:00"} for rule in WEEKDAYS_9_TO_5]

    def attempt(on_conflict: str, status: int) -> Any:
        params = {"on_conflict": on_conflict}
        if change == "schedule":
            return api.ok(
                "PUT",
                f"/providers/{ada}/schedule",
                status,
                json={"rules": mornings, "horizon_days": 14},
                params=params,
            )
        if change == "override":
            return api.ok(
                "PUT",
                f"/providers/{ada}/schedule/overrides/2027-03-04",
                status,
                json={"intervals": [{"start": "09:00", "end": "12:00"}]},
                params=params,
            )
        return api.ok(
            "POST",
            f"/providers/{ada}/time-off",
            201 if status == 200 else status,
            json={
                "start_time": iso(datetime(2027, 3, 4, 12, tzinfo=BERLIN)),
                "end_time": iso(datetime(2027, 3, 4, 17, tzinfo=BERLIN)),
            },
            params=params,
        )

    before = local_starts(api, ada)
    refused = attempt("refuse", 409)
    assert refused["code"] == "availability_conflict"
    assert [c["reservation_id"] for c in refused["conflicts"]] == [booking]
    assert local_starts(api, ada) == before  # nothing changed
    assert api.ok("GET", f"/providers/{ada}/time-off")["items"] == []
    moved = attempt("move", 200)
    changed = moved.get("change", moved)
    [move] = changed["moved"]
    assert move["reservation_id"] == booking
    # The earliest free start at or after its own: Friday 09:00 (Thursday's afternoon went).
    assert datetime.fromisoformat(move["to_start_time"]) == datetime(2027, 3, 5, 9, tzinfo=BERLIN)
    status = api.sql(f"SELECT status FROM reservations WHERE id = '{api.db_id(booking)}'")
    assert status == [("confirmed",)]
    events = Counter(row[0] for row in api.sql("SELECT type FROM events"))
    assert events["reservation.rescheduled"] == 1


def test_bad_input_is_refused_and_changes_nothing(api: Api, ada: str) -> None:
    for body in (
        {"rules": [{"weekday": "monday", "start": "09:00", "end": "17:00"}]},
        {"rules": [{"weekday": "mon", "start": "17:00", "end": "09:00"}]},
        {"rules": [{"weekday": "mon", "start": "09:00", "end": "24:30"}]},
        {"rules": WEEKDAYS_9_TO_5, "horizon_days": 0},
        {"rules": WEEKDAYS_9_TO_5, "horizon_days": 731},
        {"rules": WEEKDAYS_9_TO_5, "horizon_days": "60"},
        {"horizon_days": 30},
    ):
        answer = put_schedule(api, ada, 422, **body)
        assert answer["code"] in ("validation_error", "invalid_window"), body
    path = f"/providers/{ada}/schedule/overrides"
    overlapping = [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
    api.ok("PUT", f"{path}/2027-03-04", 422, json={"intervals": overlapping})
    api.ok("PUT", f"{path}/2027-13-04", 422, json={"intervals": []})
    # Dates whose hours fall outside the storable times, in some zone.
    for day in ("0001-01-01", "9999-12-31"):
        assert api.ok("PUT", f"{path}/{day}", 422, json={"intervals": []})["code"] == (
            "invalid_window"
        )
    backwards = {"start_time": iso(START + timedelta(days=2)), "end_time": iso(START)}
    api.ok("POST", f"/providers/{ada}/time-off", 422, json=backwards)
    api.ok("DELETE", f"/providers/{ada}/time-off/nope", 404)
    api.ok(
        "PUT", "/providers/00000000-0000-4000-8000-000000000000/schedule", 404, json={"rules": []}
    )
    assert local_starts(api, ada) == []
    assert api.sql("SELECT count(*) FROM schedules") == [(0,)]
    assert api.sql("SELECT count(*) FROM schedule_overrides") == [(0,)]


@pytest.mark.parametrize(
    "day", ["0", "0.0", "1700000000", "2027-3-4", "20270304", "2027-03-04T00:00"]
)
def test_a_date_is_yyyy_mm_dd_only(api: Api, ada: str, day: str) -> None:
    """The document says `format: date`; pydantic alone reads a bare number as a Unix
    time ("0" is 1970-01-01). Every date a request carries is refused otherwise."""
    path = f"/providers/{ada}/schedule/overrides"
    for method, where, kwargs in (
        ("PUT", f"{path}/{day}", {"json": {"intervals": []}}),
        ("DELETE", f"{path}/{day}", {}),
        ("GET", path, {"params": {"from": day}}),
        ("GET", path, {"params": {"to": day}}),
        (
            "POST",
            f"/providers/{ada}/availability/weekly",
            {"json": {"start_date": day, "end_date": "2027-03-05", "rules": [MONDAY_NINE]}},
        ),
        (
            "POST",
            f"/providers/{ada}/availability/weekly",
            {"json": {"start_date": "2027-03-01", "end_date": day, "rules": [MONDAY_NINE]}},
        ),
    ):
        answer = api.ok(method, where, 422, **kwargs)
        assert answer["code"] == "validation_error", (method, where, answer)
    assert api.sql("SELECT count(*) FROM schedule_overrides") == [(0,)]
    assert api.sql("SELECT count(*) FROM slots") == [(0,)]


@pytest.mark.parametrize(
    ("zone", "dates"),
    [
        # Spring forward and fall back in each: the hours stay 09:00-12:00 on the wall.
        ("Europe/Berlin", ["2027-03-26", "2027-03-29", "2027-10-29", "2027-11-01"]),
        ("America/New_York", ["2027-03-12", "2027-03-15", "2027-11-05", "2027-11-08"]),
        ("Asia/Kolkata", ["2027-03-12", "2027-03-15"]),
        # Lord Howe moves its clocks by 30 minutes (first Sundays of April and October).
        ("Australia/Lord_Howe", ["2027-04-02", "2027-04-05", "2027-10-01", "2027-10-04"]),
    ],
)
def test_hours_stay_on_the_wall_clock_in_every_zone(
    api: Api, clock: FrozenClock, zone: str, dates: list[str]
) -> None:
    provider = api.provider("Dr Zone", timezone=zone)["id"]
    mornings = [{"weekday": day, "start": "09:00", "end": "12:00"} for day in ("mon", "fri")]
    tz = ZoneInfo(zone)
    for day in dates:
        # Publish by the roll as the dates come within a 3-day horizon.
        clock.set(datetime.fromisoformat(day).replace(tzinfo=tz) - timedelta(days=2))
        if api.client.get(f"/providers/{provider}/schedule").status_code == 404:
            put_schedule(api, provider, rules=mornings, horizon_days=3)
        else:
            roll(api)
    days = per_day(local_starts(api, provider, tz))
    for day in dates:
        assert days[date.fromisoformat(day)] == ("09:00", "11:45", 12), (zone, day, days)
