"""Availability edits with on_conflict=move: bookings on withdrawn slots move, or are cancelled."""

from datetime import timedelta
from typing import Any

from tests.api import Api, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
NINE = DAY.replace(hour=9)


def at(minutes: int, day: int = 0) -> str:
    return iso(NINE + timedelta(days=day, minutes=minutes))


def edit(api: Api, provider_id: str, start: int, end: int, **query: Any) -> Any:
    """Withdraw [09:00 + start, 09:00 + end) minutes."""
    params = {"from": at(start), "to": at(end), **query}
    return api.client.delete(f"/providers/{provider_id}/availability", params=params)


def test_bookings_move_to_the_earliest_start_that_fits(api: Api) -> None:
    provider = api.provider()
    bob, eve = api.customer(), api.customer("Eve", "eve@example.com")
    api.publish(provider["id"], NINE, NINE + timedelta(hours=4))
    kind = api.appointment_type(provider["id"], buffer_after_minutes=15)  # 60 minutes in all
    first = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    api.confirm(bob["id"], first["id"])
    second = api.reserve(eve["id"], api.slot_at(provider["id"], NINE + timedelta(hours=1))).json()
    # 12:00 is taken, so the first booking cannot land at 11:15..12:00.
    api.reserve(eve["id"], api.slot_at(provider["id"], NINE + timedelta(hours=3)))

    response = edit(api, provider["id"], 0, 90, on_conflict="move")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cancelled"] == []
    assert body["removed"] == 6
    assert body["moved"] == [
        {"reservation_id": first["id"], "from_start_time": at(0), "to_start_time": at(90)},
        {"reservation_id": second["id"], "from_start_time": at(60), "to_start_time": at(150)},
    ]
    reservations = {
        r["id"]: r for r in api.ok("GET", f"/providers/{provider['id']}/reservations")["items"]
    }
    assert reservations[first["id"]]["status"] == "confirmed"
    assert (reservations[first["id"]]["start_time"], reservations[first["id"]]["end_time"]) == (
        at(90),
        at(135),
    )
    assert reservations[second["id"]]["status"] == "held"
    assert reservations[second["id"]]["expires_at"] == second["expires_at"]
    states = api.slot_states(provider["id"])
    assert at(0) not in states
    assert at(75) not in states
    assert [states[at(m)] for m in range(90, 240, 15)] == (
        ["confirmed"] * 4 + ["reserved", "available", "reserved"] + ["available"] * 3
    )
    assert api.links() == 4 + 1 + 1


def test_a_move_may_overlap_the_bookings_own_slots(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=2))
    kind = api.appointment_type(provider["id"], duration_minutes=60)
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    body = edit(api, provider["id"], 0, 15, on_conflict="move").json()
    assert body["moved"] == [
        {"reservation_id": held["id"], "from_start_time": at(0), "to_start_time": at(15)}
    ]
    states = api.slot_states(provider["id"])
    assert [m for m in range(15, 120, 15) if states[at(m)] == "reserved"] == [15, 30, 45, 60]


def test_a_booking_that_fits_nowhere_within_14_days_is_cancelled(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(minutes=45))
    far = NINE + timedelta(days=15)
    api.publish(provider["id"], far, far + timedelta(hours=1))  # too late to count
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    body = edit(api, provider["id"], 0, 30, on_conflict="move").json()  # 09:30 alone is left
    assert body["moved"] == []
    assert [c["reservation_id"] for c in body["cancelled"]] == [held["id"]]
    assert api.sql("SELECT status FROM reservations") == [("cancelled",)]
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    assert api.links() == 0


def test_refuse_is_the_default_and_changes_nothing(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=2))
    kind = api.appointment_type(provider["id"], buffer_before_minutes=15)
    held = api.reserve_type(
        bob["id"], api.slot_at(provider["id"], NINE + timedelta(minutes=15)), kind["id"]
    ).json()
    before = api.slot_states(provider["id"])
    # Only the buffer slot (09:00) would go: that is a conflict too.
    response = edit(api, provider["id"], 0, 15)
    assert response.status_code == 409
    assert response.json()["code"] == "availability_conflict"
    assert [c["reservation_id"] for c in response.json()["conflicts"]] == [held["id"]]
    assert api.slot_states(provider["id"]) == before
    contradictory = edit(api, provider["id"], 0, 15, on_conflict="move", cancel_conflicts="true")
    assert contradictory.status_code == 422
    cancelled = edit(api, provider["id"], 0, 15, on_conflict="cancel").json()
    assert [c["reservation_id"] for c in cancelled["cancelled"]] == [held["id"]]
    states = api.slot_states(provider["id"])
    assert at(0) not in states
    assert set(states.values()) == {"available"}


def test_replacing_availability_moves_bookings_into_the_new_windows(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=1))
    held = api.reserve(bob["id"], api.slot_at(provider["id"], NINE)).json()
    response = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": at(0), "to": at(180), "on_conflict": "move"},
        json={"windows": [{"start_time": at(120), "end_time": at(180)}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved"] == [
        {"reservation_id": held["id"], "from_start_time": at(0), "to_start_time": at(120)}
    ]
    states = api.slot_states(provider["id"])
    assert sorted(states) == [at(m) for m in (120, 135, 150, 165)]
    assert states[at(120)] == "reserved"
