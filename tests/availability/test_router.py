from datetime import timedelta
from typing import Any

import pytest

from appointments.clock import FrozenClock
from tests.api import Api, iso
from tests.conftest import START

DAY = START + timedelta(days=3)


def test_window_is_cut_into_quarter_hours(api: Api) -> None:
    provider = api.provider()
    window = api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    assert window["start_time"] == iso(DAY)
    assert window["end_time"] == iso(DAY + timedelta(hours=2))
    starts = [slot["start_time"] for slot in window["slots"]]
    assert starts == [iso(DAY + timedelta(minutes=15 * i)) for i in range(8)]
    for slot in window["slots"]:
        assert slot["status"] == "available"
        assert slot["provider_id"] == provider["id"]
    assert window["slots"][-1]["end_time"] == iso(DAY + timedelta(hours=2))


def test_offsets_are_accepted_and_answers_are_utc(api: Api) -> None:
    provider = api.provider()
    window = api.ok(
        "POST",
        f"/providers/{provider['id']}/availability",
        201,
        json={"start_time": "2027-03-04T10:00:00+01:00", "end_time": "2027-03-04T10:30:00+01:00"},
    )
    assert [s["start_time"] for s in window["slots"]] == [
        "2027-03-04T09:00:00Z",
        "2027-03-04T09:15:00Z",
    ]


def test_resubmitting_an_overlapping_window_creates_only_missing_slots(api: Api) -> None:
    provider = api.provider()
    first = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    assert len(first["slots"]) == 4
    again = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    assert again["slots"] == []
    wider = api.publish(
        provider["id"], DAY - timedelta(minutes=30), DAY + timedelta(hours=1, minutes=15)
    )
    assert [s["start_time"] for s in wider["slots"]] == [
        iso(DAY - timedelta(minutes=30)),
        iso(DAY - timedelta(minutes=15)),
        iso(DAY + timedelta(hours=1)),
    ]
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 7


def test_existing_slots_keep_their_state_on_resubmission(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], DAY)
    assert api.reserve(customer["id"], slot["id"]).status_code == 201
    assert api.publish(provider["id"], DAY, DAY + timedelta(minutes=30))["slots"][0][
        "start_time"
    ] == iso(DAY + timedelta(minutes=15))
    assert api.slots(provider["id"], status="reserved")[0]["id"] == slot["id"]


@pytest.mark.parametrize(
    ("start_offset", "end_offset", "words"),
    [
        (timedelta(minutes=5), timedelta(hours=1), "start_time"),
        (timedelta(0), timedelta(minutes=50), "end_time"),
        (timedelta(seconds=1), timedelta(hours=1), "boundary"),
        (timedelta(hours=1), timedelta(hours=1), "after"),
        (timedelta(hours=2), timedelta(hours=1), "after"),
        (timedelta(0), timedelta(days=31, minutes=15), "31 days"),
    ],
)
def test_bad_windows_are_422_saying_why(
    api: Api, start_offset: timedelta, end_offset: timedelta, words: str
) -> None:
    provider = api.provider()
    response = api.client.post(
        f"/providers/{provider['id']}/availability",
        json={"start_time": iso(DAY + start_offset), "end_time": iso(DAY + end_offset)},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0


def test_a_31_day_window_is_allowed(api: Api) -> None:
    provider = api.provider()
    window = api.publish(provider["id"], DAY, DAY + timedelta(days=31))
    assert len(window["slots"]) == 31 * 96
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 2976


def test_naive_times_are_rejected(api: Api) -> None:
    provider = api.provider()
    response = api.client.post(
        f"/providers/{provider['id']}/availability",
        json={"start_time": "2027-03-04T09:00:00", "end_time": "2027-03-04T10:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    listing = api.client.get(
        f"/providers/{provider['id']}/availability", params={"from": "2027-03-04T09:00:00"}
    )
    assert listing.status_code == 422


def test_availability_of_unknown_provider_is_404(api: Api) -> None:
    for ident in ("00000000-0000-0000-0000-000000000000", "nope"):
        posted = api.client.post(
            f"/providers/{ident}/availability",
            json={"start_time": iso(DAY), "end_time": iso(DAY + timedelta(hours=1))},
        )
        assert posted.status_code == 404
        assert api.client.get(f"/providers/{ident}/availability").status_code == 404


def test_default_listing_shows_only_bookable_slots(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    customer = api.customer()
    # Inside the 24 h notice: never listed as bookable.
    api.publish(provider["id"], START + timedelta(hours=23), START + timedelta(hours=24))
    free, held, confirmed = api.publish(provider["id"], DAY, DAY + timedelta(minutes=45))["slots"]
    reservation = api.reserve(customer["id"], confirmed["id"]).json()
    assert api.confirm(customer["id"], reservation["id"]).status_code == 200
    assert api.reserve(customer["id"], held["id"]).status_code == 201

    assert [s["id"] for s in api.slots(provider["id"])] == [free["id"]]
    assert [s["id"] for s in api.slots(provider["id"], status="available")] == [free["id"]]
    assert [s["id"] for s in api.slots(provider["id"], status="reserved")] == [held["id"]]
    assert [s["id"] for s in api.slots(provider["id"], status="confirmed")] == [confirmed["id"]]
    every = api.slots(provider["id"], status="all")
    assert len(every) == 7
    assert {s["status"] for s in every} == {"available", "reserved", "confirmed"}

    # The hold runs out: the slot is available again in every answer, with no sweep.
    clock.advance(minutes=30)
    assert [s["id"] for s in api.slots(provider["id"])] == [free["id"], held["id"]]
    assert api.slots(provider["id"], status="reserved") == []
    statuses = {s["id"]: s["status"] for s in api.slots(provider["id"], status="all")}
    assert statuses[held["id"]] == "available"


def test_from_and_to_select_start_times_half_open(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    selected = api.slots(
        provider["id"],
        **{"from": iso(DAY + timedelta(minutes=30)), "to": iso(DAY + timedelta(hours=1))},
    )
    assert [s["start_time"] for s in selected] == [
        iso(DAY + timedelta(minutes=30)),
        iso(DAY + timedelta(minutes=45)),
    ]
    # An unencoded "+" arrives as a space; the offset still counts.
    spaced = api.client.get(
        f"/providers/{provider['id']}/availability"
        "?from=2027-03-04T09:30:00 01:00&to=2027-03-04T09:00:00Z"
    )
    assert spaced.status_code == 200
    assert [s["start_time"] for s in spaced.json()["items"]] == [
        "2027-03-04T08:30:00Z",
        "2027-03-04T08:45:00Z",
    ]


def test_listing_rejects_unknown_status(api: Api) -> None:
    provider = api.provider()
    response = api.client.get(
        f"/providers/{provider['id']}/availability", params={"status": "free"}
    )
    assert response.status_code == 422


def test_walking_all_pages_returns_every_slot_once_in_order(api: Api) -> None:
    provider = api.provider()
    other = api.provider("Other")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=9, minutes=15))
    api.publish(other["id"], DAY, DAY + timedelta(hours=2))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 4, "status": "all"}
        if cursor:
            params["cursor"] = cursor
        page = api.ok("GET", f"/providers/{provider['id']}/availability", params=params)
        pages += 1
        seen.extend(s["start_time"] for s in page["items"])
        assert all(s["provider_id"] == provider["id"] for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 10
    assert seen == [iso(DAY + timedelta(minutes=15 * i)) for i in range(37)]


def test_publish_answers_exactly_what_the_listing_says_of_the_same_slots(api: Api) -> None:
    """The publish answers are serialised without SlotOut models (for speed); they
    must still be byte-for-byte the listing's representation."""
    provider = api.provider(timezone="Europe/Berlin")
    start = START + timedelta(days=3)
    created = api.publish(provider["id"], start, start + timedelta(hours=2))
    weekly = api.ok(
        "POST",
        f"/providers/{provider['id']}/availability/weekly",
        201,
        json={
            "start_date": "2027-03-05",
            "end_date": "2027-03-05",
            "rules": [{"weekday": "fri", "start": "09:00", "end": "10:00"}],
        },
    )
    listed = api.slots(provider["id"], limit=100)
    assert created["slots"] + weekly["slots"] == listed
    assert len(listed) == 12
    assert set(created) == {"start_time", "end_time", "slots"}
    assert set(weekly) == {"start_date", "end_date", "timezone", "slots"}
    assert created["start_time"] == iso(start)
    assert len({slot["id"] for slot in listed}) == 12


def _listing(api: Api, provider_id: str, tag: str | None = None, **query: Any) -> Any:
    headers = {"If-None-Match": tag} if tag else {}
    return api.client.get(f"/providers/{provider_id}/availability", params=query, headers=headers)


def test_an_unchanged_page_answers_304_to_its_etag_until_a_booking_changes_it(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    first, _second = api.publish(provider["id"], DAY, DAY + timedelta(minutes=30))["slots"]
    page = _listing(api, provider["id"])
    assert page.status_code == 200
    tag = page.headers["etag"]
    assert tag.startswith('"')
    assert page.headers["cache-control"] == "private, no-cache"

    again = _listing(api, provider["id"], tag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    # Weak comparison, and a list of tags, as RFC 9110 asks of If-None-Match.
    assert _listing(api, provider["id"], f'"other", W/{tag}').status_code == 304
    assert _listing(api, provider["id"], '"other"').status_code == 200
    # Another page has another tag (the tag is the body's: equal bodies share it).
    assert _listing(api, provider["id"], tag, limit=1).status_code == 200

    assert api.reserve(customer["id"], first["id"]).status_code == 201
    changed = _listing(api, provider["id"], tag)
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert len(changed.json()["items"]) == 1


def test_a_hold_running_out_changes_the_etag_without_any_write(
    api: Api, clock: FrozenClock
) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], DAY)
    assert api.reserve(customer["id"], slot["id"]).status_code == 201
    held = _listing(api, provider["id"], status="all")
    assert held.json()["items"][0]["status"] == "reserved"
    tag = held.headers["etag"]
    assert _listing(api, provider["id"], tag, status="all").status_code == 304

    clock.advance(minutes=30)
    freed = _listing(api, provider["id"], tag, status="all")
    assert freed.status_code == 200
    assert freed.json()["items"][0]["status"] == "available"
