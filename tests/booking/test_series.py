"""Recurring series through the API, on SQLite and PostgreSQL: every occurrence by the
rules of a single reserve, all or none, one hold against the limit, wall-clock times
across daylight-saving changes, confirm and cancel."""

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, Json, bearer, iso
from tests.conftest import START
from tests.gate import race
from tests.live_server import create_clients, live_server, next_quarter_hour

WEEK = timedelta(weeks=1)
FIRST = START + timedelta(days=3, hours=2)  # Thursday 2027-03-04 10:00 UTC


def weekly_slots(api: Api, provider_id: str, first: datetime, count: int) -> list[Json]:
    return [api.slot(provider_id, first + k * WEEK) for k in range(count)]


def book(api: Api, client_id: str, slot_id: str, count: int, **fields: Any) -> httpx.Response:
    body = {"slot_id": slot_id, "repeat": {"count": count, **fields.pop("repeat", {})}, **fields}
    response: httpx.Response = api.client.post(f"/clients/{client_id}/series", json=body)
    return response


def statuses(api: Api, provider_id: str) -> list[str]:
    listing = api.ok("GET", f"/providers/{provider_id}/availability?status=all")
    return [slot["status"] for slot in listing["items"]]


def test_a_series_holds_every_occurrence_with_one_expiry(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    slots = weekly_slots(api, provider["id"], FIRST, 4)
    response = book(api, customer["id"], slots[0]["id"], 4)
    assert response.status_code == 201, response.text
    series = response.json()
    assert series["repeat"] == {"interval_weeks": 1, "count": 4}
    assert series["policy"] == "all"
    assert series["skipped"] == []
    occurrences = series["reservations"]
    assert [r["slot_id"] for r in occurrences] == [s["id"] for s in slots]
    assert {r["status"] for r in occurrences} == {"held"}
    assert {r["series_id"] for r in occurrences} == {series["id"]}
    assert {r["expires_at"] for r in occurrences} == {series["expires_at"]}
    assert statuses(api, provider["id"]) == ["reserved"] * 4
    # Readable by the client and by the provider, not by another client.
    assert api.ok("GET", f"/clients/{customer['id']}/series/{series['id']}") == series
    assert api.ok("GET", f"/providers/{provider['id']}/series/{series['id']}") == series
    other = api.customer("Eve", "eve@example.com")
    api.ok("GET", f"/clients/{other['id']}/series/{series['id']}", 404)
    # Each occurrence's events carry the series.
    rows = api.sql("SELECT count(*) FROM events WHERE series_id IS NOT NULL")
    assert rows == [(4,)]


def test_every_other_week(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    slots = weekly_slots(api, provider["id"], FIRST, 5)
    series = api.ok(
        "POST",
        f"/clients/{customer['id']}/series",
        201,
        json={"slot_id": slots[0]["id"], "repeat": {"count": 3, "interval_weeks": 2}},
    )
    assert [r["slot_id"] for r in series["reservations"]] == [slots[k]["id"] for k in (0, 2, 4)]


def test_policy_all_holds_nothing_when_one_occurrence_is_refused(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    rival = api.customer("Eve", "eve@example.com")
    slots = weekly_slots(api, provider["id"], FIRST, 3)
    assert api.reserve(rival["id"], slots[1]["id"]).status_code == 201
    response = book(api, customer["id"], slots[0]["id"], 4)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "series_conflict"
    assert problem["conflicts"] == [
        {"start_time": iso(FIRST + WEEK), "code": "slot_unavailable"},
        {"start_time": iso(FIRST + 3 * WEEK), "code": "slot_unavailable"},  # no slot at all
    ]
    assert api.sql("SELECT count(*) FROM series") == [(0,)]
    assert statuses(api, provider["id"]) == ["available", "reserved", "available"]
    mine = api.ok("GET", f"/clients/{customer['id']}/reservations")
    assert mine["items"] == []


def test_policy_available_holds_what_passes_and_lists_the_rest(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    rival = api.customer("Eve", "eve@example.com")
    slots = weekly_slots(api, provider["id"], FIRST, 3)
    assert api.reserve(rival["id"], slots[1]["id"]).status_code == 201
    series = api.ok(
        "POST",
        f"/clients/{customer['id']}/series",
        201,
        json={"slot_id": slots[0]["id"], "repeat": {"count": 3}, "policy": "available"},
    )
    assert [r["slot_id"] for r in series["reservations"]] == [slots[0]["id"], slots[2]["id"]]
    assert series["skipped"] == [{"start_time": iso(FIRST + WEEK), "code": "slot_unavailable"}]
    # None passes: a conflict, nothing held.
    only_taken = book(api, rival["id"], slots[1]["id"], 2, policy="available")
    assert only_taken.status_code == 409
    assert only_taken.json()["code"] == "series_conflict"


def test_each_occurrence_meets_the_notice_and_the_horizon(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    kind = api.appointment_type(provider["id"], duration_minutes=15, max_advance_days=10)
    slots = weekly_slots(api, provider["id"], FIRST, 3)
    response = book(
        api, customer["id"], slots[0]["id"], 3, appointment_type_id=kind["id"], policy="available"
    )
    assert response.status_code == 201, response.text
    skipped = response.json()["skipped"]
    assert skipped == [
        {"start_time": iso(FIRST + WEEK), "code": "too_far_ahead"},
        {"start_time": iso(FIRST + 2 * WEEK), "code": "too_far_ahead"},
    ]
    # The first occurrence inside the notice refuses the whole `all` series.
    soon = api.slot(provider["id"], START + timedelta(hours=2))
    late = book(api, customer["id"], soon["id"], 2)
    assert late.status_code == 409
    assert late.json()["conflicts"][0] == {
        "start_time": iso(START + timedelta(hours=2)),
        "code": "too_late_to_book",
    }


@pytest.mark.parametrize(
    ("zone", "first_local", "offsets"),
    [
        # 10:00 in Berlin: UTC+1 before 2027-03-28, UTC+2 after.
        ("Europe/Berlin", datetime(2027, 3, 22, 10, 0), (1, 2, 2)),
        # 09:30 in New York: UTC-5 before 2027-03-14, UTC-4 after.
        ("America/New_York", datetime(2027, 3, 8, 9, 30), (-5, -4, -4)),
    ],
)
def test_occurrences_keep_the_wall_clock_time_across_daylight_saving(
    api: Api, zone: str, first_local: datetime, offsets: tuple[int, ...]
) -> None:
    provider = api.provider(timezone=zone)
    customer = api.customer()
    starts = [
        (first_local + k * WEEK).replace(tzinfo=UTC) - timedelta(hours=offset)
        for k, offset in enumerate(offsets)
    ]
    slots = [api.slot(provider["id"], start) for start in starts]
    # A decoy an hour off the wall-clock time (where a UTC week would land).
    api.slot(provider["id"], starts[0] + 2 * WEEK)
    series = api.ok(
        "POST",
        f"/clients/{customer['id']}/series",
        201,
        json={"slot_id": slots[0]["id"], "repeat": {"count": 3}},
    )
    assert [r["start_time"] for r in series["reservations"]] == [iso(s) for s in starts]


def test_a_series_counts_as_one_hold(api: Api) -> None:
    api.configure(max_holds_per_client=2)
    provider = api.provider()
    customer = api.customer()
    slots = weekly_slots(api, provider["id"], FIRST, 5)
    extra = api.slot(provider["id"], FIRST + timedelta(hours=1))
    another = api.slot(provider["id"], FIRST + timedelta(hours=2))
    assert book(api, customer["id"], slots[0]["id"], 5).status_code == 201
    assert api.reserve(customer["id"], extra["id"]).status_code == 201  # two holds now
    refused = api.reserve(customer["id"], another["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "too_many_holds"
    second = book(api, customer["id"], another["id"], 2, policy="available")
    assert second.status_code == 409
    assert second.json()["code"] == "too_many_holds"


def test_confirm_confirms_every_occurrence_or_none(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    customer = api.customer()
    slots = weekly_slots(api, provider["id"], FIRST, 3)
    series = book(api, customer["id"], slots[0]["id"], 3).json()
    path = f"/clients/{customer['id']}/series/{series['id']}/confirm"
    confirmed = api.ok("POST", path)
    assert {r["status"] for r in confirmed["reservations"]} == {"confirmed"}
    assert statuses(api, provider["id"]) == ["confirmed"] * 3
    assert api.ok("POST", path) == confirmed  # again: nothing changes
    # A second series whose hold runs out cannot be confirmed.
    later = weekly_slots(api, provider["id"], FIRST + timedelta(hours=1), 2)
    lapsed = book(api, customer["id"], later[0]["id"], 2).json()
    clock.advance(hours=1)
    response = api.client.post(f"/clients/{customer['id']}/series/{lapsed['id']}/confirm")
    assert response.status_code == 409
    assert response.json()["code"] == "reservation_expired"
    assert statuses(api, provider["id"]).count("available") == 2


def test_cancel_from_a_start_and_the_change_notice(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    customer = api.customer()
    kind = api.appointment_type(
        provider["id"], duration_minutes=15, change_notice_minutes=7 * 24 * 60
    )
    slots = weekly_slots(api, provider["id"], FIRST, 4)
    series = book(api, customer["id"], slots[0]["id"], 4, appointment_type_id=kind["id"]).json()
    api.ok("POST", f"/clients/{customer['id']}/series/{series['id']}/confirm")
    # From the third week on: the first two stay.
    cancelled = api.ok(
        "POST",
        f"/clients/{customer['id']}/series/{series['id']}/cancel",
        json={"from_start_time": iso(FIRST + 2 * WEEK)},
    )
    assert [r["status"] for r in cancelled["reservations"]] == [
        "confirmed",
        "confirmed",
        "cancelled",
        "cancelled",
    ]
    assert cancelled["kept"] == []
    # The rest, by the client: the first is inside the week's change notice and stays.
    rest = api.ok("POST", f"/clients/{customer['id']}/series/{series['id']}/cancel")
    assert rest["kept"] == [{"start_time": iso(FIRST), "code": "too_late_to_change"}]
    assert [r["status"] for r in rest["reservations"]][:2] == ["confirmed", "cancelled"]
    # The provider is not bound by the notice.
    final = api.ok("POST", f"/providers/{provider['id']}/series/{series['id']}/cancel", json={})
    assert {r["status"] for r in final["reservations"]} == {"cancelled"}
    assert statuses(api, provider["id"]) == ["available"] * 4


@pytest.mark.parametrize(
    "body",
    [
        {"repeat": {"count": 1}},
        {"repeat": {"count": 53}},
        {"repeat": {"count": 2, "interval_weeks": 5}},
        {"repeat": {"count": 2}, "policy": "some"},
        {"repeat": {"count": "2"}},
        {},
    ],
)
def test_bad_series_requests_are_refused(api: Api, body: dict[str, Any]) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], FIRST)
    response = api.client.post(
        f"/clients/{customer['id']}/series", json={"slot_id": slot["id"], **body}
    )
    assert response.status_code == 422, response.text
    assert api.sql("SELECT count(*) FROM reservations") == [(0,)]


def test_unknown_slot_and_more_seats_than_a_session_has(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], FIRST)
    missing = book(api, customer["id"], "3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10", 2)
    assert missing.status_code == 404
    crowded = book(api, customer["id"], slot["id"], 2, seats=2)
    assert crowded.status_code == 409
    assert crowded.json()["code"] == "session_full"
    assert crowded.json()["seats_left"] == 1


ADMIN = bearer(Role.ADMIN, "series-admin")


@pytest.mark.live
def test_two_overlapping_series_racing_leave_exactly_one_winner(
    database_url: str, api: Api
) -> None:
    """Eight clients each book the same four weeks (policy all) at once: one gets all
    four, the others none, and no week is held twice."""
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider = http.post("/providers", json={"name": "Dr Weekly"}).json()
        first = next_quarter_hour(datetime.now(UTC) + timedelta(days=3))
        for k in range(4):
            start = first + k * WEEK
            http.post(
                f"/providers/{provider['id']}/availability",
                json={"start_time": iso(start), "end_time": iso(start + timedelta(minutes=15))},
            ).raise_for_status()
        listing = http.get(f"/providers/{provider['id']}/availability").json()["items"]
        clients = create_clients(http, 8)

        def book_series(client_id: str) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                response = own.post(
                    f"/clients/{client_id}/series",
                    json={"slot_id": listing[0]["id"], "repeat": {"count": 4}},
                )
                return response.status_code, response.json().get("code", "")

        answers = race(database_url, [functools.partial(book_series, c["id"]) for c in clients])

    assert sorted(status for status, _ in answers) == [201] + [409] * 7, answers
    assert {code for status, code in answers if status == 409} == {"series_conflict"}
    assert api.sql("SELECT count(*) FROM series") == [(1,)]
    live = api.sql("SELECT count(*) FROM reservations WHERE status = 'held'")
    assert live == [(4,)]
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'reserved'") == [(4,)]
