"""Availability edits never drop bookings silently: DELETE and PUT of a range."""

from datetime import timedelta

from appointments.clock import FrozenClock
from tests.api import Api, Json, iso
from tests.conftest import START

DAY = START + timedelta(days=3)


def setup_day(api: Api) -> tuple[Json, Json, list[Json]]:
    """A provider with 09:00-10:00 (4 slots); slot 1 held, slot 2 confirmed."""
    provider = api.provider()
    bob = api.customer()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    api.reserve(bob["id"], slots[1]["id"])
    booked = api.reserve(bob["id"], slots[2]["id"]).json()
    api.confirm(bob["id"], booked["id"])
    return provider, bob, slots


def remove(api: Api, provider: Json, hours: int = 1, **query: object) -> object:
    return api.client.delete(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=hours)), **query},
    )


def test_removing_a_free_window(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    response = api.client.delete(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=1))},
    )
    assert response.status_code == 200
    assert response.json() == {"created": [], "removed": 4, "cancelled": [], "moved": []}
    starts = [s["start_time"] for s in api.slots(provider["id"], status="all")]
    assert starts == [iso(DAY + timedelta(minutes=60 + 15 * i)) for i in range(4)]


def test_booked_slots_make_removal_409_listing_them_and_nothing_changes(api: Api) -> None:
    provider, bob, slots = setup_day(api)
    response = remove(api, provider)
    assert response.status_code == 409  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["code"] == "availability_conflict"
    conflicts = problem["conflicts"]
    assert [(c["slot_id"], c["status"]) for c in conflicts] == [
        (slots[1]["id"], "held"),
        (slots[2]["id"], "confirmed"),
    ]
    assert {c["client_id"] for c in conflicts} == {bob["id"]}
    assert conflicts[0]["start_time"] == iso(DAY + timedelta(minutes=15))
    assert len(api.slots(provider["id"], status="all")) == 4
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'removed'")[0][0] == 0


def test_cancel_conflicts_cancels_them_in_the_same_change(api: Api) -> None:
    provider, bob, slots = setup_day(api)
    response = remove(api, provider, cancel_conflicts="true")
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["removed"] == 4
    assert [c["slot_id"] for c in body["cancelled"]] == [slots[1]["id"], slots[2]["id"]]
    assert api.slots(provider["id"], status="all") == []
    statuses = api.sql("SELECT status FROM reservations ORDER BY start_time")
    assert statuses == [("cancelled",), ("cancelled",)]
    listed = api.ok("GET", f"/clients/{bob['id']}/reservations")["items"]
    assert [r["status"] for r in listed] == ["cancelled", "cancelled"]


def test_a_run_out_hold_is_no_conflict(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    api.reserve(bob["id"], slot["id"])
    clock.advance(minutes=30)
    response = remove(api, provider)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.json()["removed"] == 1  # type: ignore[attr-defined]


def test_replace_keeps_booked_slots_that_stay_inside_the_new_windows(api: Api) -> None:
    provider, _, slots = setup_day(api)
    # New availability 09:15-09:45 plus 11:00-11:30: drops free 09:00 and 09:45.
    response = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=3))},
        json={
            "windows": [
                {
                    "start_time": iso(DAY + timedelta(minutes=15)),
                    "end_time": iso(DAY + timedelta(minutes=45)),
                },
                {
                    "start_time": iso(DAY + timedelta(hours=2)),
                    "end_time": iso(DAY + timedelta(hours=2, minutes=30)),
                },
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["removed"] == 2
    assert body["cancelled"] == []
    assert [s["start_time"] for s in body["created"]] == [
        iso(DAY + timedelta(hours=2)),
        iso(DAY + timedelta(hours=2, minutes=15)),
    ]
    remaining = {s["id"]: s["status"] for s in api.slots(provider["id"], status="all")}
    assert remaining[slots[1]["id"]] == "reserved"
    assert remaining[slots[2]["id"]] == "confirmed"
    assert len(remaining) == 4


def test_replace_that_would_drop_a_booking_is_409(api: Api) -> None:
    provider, _, slots = setup_day(api)
    response = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=1))},
        json={"windows": [{"start_time": iso(DAY), "end_time": iso(DAY + timedelta(minutes=30))}]},
    )
    assert response.status_code == 409
    assert [c["slot_id"] for c in response.json()["conflicts"]] == [slots[2]["id"]]
    assert len(api.slots(provider["id"], status="all")) == 4


def test_replace_rejects_windows_outside_the_range_and_bad_ranges(api: Api) -> None:
    provider = api.provider()
    url = f"/providers/{provider['id']}/availability"
    outside = api.client.put(
        url,
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=1))},
        json={"windows": [{"start_time": iso(DAY), "end_time": iso(DAY + timedelta(hours=2))}]},
    )
    assert outside.status_code == 422
    for params in (
        {"from": iso(DAY)},
        {"from": iso(DAY + timedelta(hours=1)), "to": iso(DAY)},
        {"from": iso(DAY + timedelta(minutes=7)), "to": iso(DAY + timedelta(hours=1))},
        {"from": iso(DAY), "to": iso(DAY + timedelta(days=32))},
    ):
        assert api.client.delete(url, params=params).status_code == 422, params


def test_deleting_a_provider_with_bookings_lists_them_or_cancels_them(api: Api) -> None:
    provider, _, slots = setup_day(api)
    refused = api.client.delete(f"/providers/{provider['id']}")
    assert refused.status_code == 409
    assert [c["slot_id"] for c in refused.json()["conflicts"]] == [slots[1]["id"], slots[2]["id"]]
    forced = api.client.delete(f"/providers/{provider['id']}", params={"cancel_conflicts": True})
    assert forced.status_code == 204
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0


def test_removing_a_slot_under_a_run_out_unswept_hold_expires_the_hold(
    api: Api, clock: FrozenClock
) -> None:
    """The hold is written down as expired in the same change: no `held` reservation,
    no link, left on a removed slot; its expiry is told like any other."""
    provider = api.provider()
    bob = api.customer()
    (slot,) = api.publish(provider["id"], DAY, DAY + timedelta(minutes=15))["slots"]
    held = api.reserve(bob["id"], slot["id"]).json()
    clock.advance(minutes=31)
    response = remove(api, provider)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.json()["removed"] == 1  # type: ignore[attr-defined]
    reservation = api.ok("GET", f"/clients/{bob['id']}/reservations")["items"][0]
    assert (reservation["id"], reservation["status"]) == (held["id"], "expired")
    rows = api.sql("SELECT status FROM reservations")
    assert rows == [("expired",)]
    assert api.links() == 0
    events = api.sql("SELECT type FROM events ORDER BY occurred_at, type")
    assert events == [("reservation.held",), ("reservation.expired",)]


def test_windows_that_repeat_each_other_are_cut_once(api: Api) -> None:
    """500 copies of one 31-day window (and overlapping halves) are the window's 2,976
    slots: the work follows the union, not the request's size."""
    provider = api.provider()
    month = (DAY, DAY + timedelta(days=31))
    half = {"start_time": iso(DAY), "end_time": iso(DAY + timedelta(days=20))}
    whole = {"start_time": iso(month[0]), "end_time": iso(month[1])}
    response = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(month[0]), "to": iso(month[1])},
        json={"windows": [whole] * 498 + [half, half]},
    )
    assert response.status_code == 200, response.text
    created = response.json()["created"]
    assert len(created) == 31 * 96
    assert created[0]["start_time"] == iso(DAY)
    assert created[-1]["start_time"] == iso(month[1] - timedelta(minutes=15))
    # Touching windows join; a gap stays a gap.
    response = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(hours=2))},
        json={
            "windows": [
                {"start_time": iso(DAY), "end_time": iso(DAY + timedelta(minutes=30))},
                {
                    "start_time": iso(DAY + timedelta(minutes=30)),
                    "end_time": iso(DAY + timedelta(hours=1)),
                },
                {
                    "start_time": iso(DAY + timedelta(minutes=75)),
                    "end_time": iso(DAY + timedelta(minutes=90)),
                },
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["removed"] == 3  # 10:00, 10:30 and 10:45
