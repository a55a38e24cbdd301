"""Rescheduling: atomic moves for clients and providers, bound by the type's rules."""

from datetime import timedelta
from typing import Any

import pytest

from appointments.auth.tokens import Role
from tests.api import Api, Json, bearer, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
NINE = DAY.replace(hour=9)
NIL = "00000000-0000-0000-0000-000000000000"


def at(minutes: int) -> str:
    return iso(NINE + timedelta(minutes=minutes))


@pytest.fixture
def setup(api: Api) -> tuple[Json, Json, Json]:
    """09:00-13:00 published, a 60-minute type, Bob."""
    provider = api.provider()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=4))
    kind = api.appointment_type(provider["id"], duration_minutes=60)
    return provider, kind, api.customer()


def move(api: Api, client_id: str, reservation_id: str, slot_id: str, **kwargs: Any) -> Any:
    return api.client.post(
        f"/clients/{client_id}/reservations/{reservation_id}/reschedule",
        json={"slot_id": slot_id},
        **kwargs,
    )


def test_a_hold_moves_onto_slots_overlapping_its_own(
    api: Api, setup: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = setup
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    later = api.slot_at(provider["id"], NINE + timedelta(minutes=15))
    response = move(api, bob["id"], held["id"], later)
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved | {"slot_id": None, "start_time": None, "end_time": None} == held | {
        "slot_id": None,
        "start_time": None,
        "end_time": None,
    }  # same id, status, expiry, type
    assert (moved["slot_id"], moved["start_time"], moved["end_time"]) == (later, at(15), at(75))
    states = api.slot_states(provider["id"])
    assert [states[at(m)] for m in (0, 15, 30, 45, 60, 75)] == [
        "available",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "available",
    ]
    assert api.links() == 4


def test_a_confirmed_booking_stays_confirmed_and_a_provider_can_move_it(
    api: Api, setup: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = setup
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    api.confirm(bob["id"], held["id"])
    target = api.slot_at(provider["id"], NINE + timedelta(hours=2))
    response = api.client.post(
        f"/providers/{provider['id']}/reservations/{held['id']}/reschedule",
        json={"slot_id": target},
        headers=bearer(Role.PROVIDER, provider["id"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmed"
    assert response.json()["start_time"] == at(120)
    states = api.slot_states(provider["id"])
    assert [m for m in range(0, 240, 15) if states[at(m)] == "confirmed"] == [120, 135, 150, 165]


def test_when_the_new_slots_cannot_be_had_nothing_changes(
    api: Api, setup: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = setup
    eve = api.customer("Eve", "eve@example.com")
    mine = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    api.reserve(eve["id"], api.slot_at(provider["id"], NINE + timedelta(minutes=150)))
    before = api.slot_states(provider["id"])
    for minutes in (105, 150, 195):  # overlaps Eve's 11:30 slot; runs past 13:00
        response = move(
            api,
            bob["id"],
            mine["id"],
            api.slot_at(provider["id"], NINE + timedelta(minutes=minutes)),
        )
        assert (response.status_code, response.json()["code"]) == (409, "slot_unavailable")
    assert api.slot_states(provider["id"]) == before
    assert api.ok("GET", f"/clients/{bob['id']}/reservations")["items"] == [mine]


def test_ended_reservations_cannot_move(
    api: Api, setup: tuple[Json, Json, Json], clock: Any
) -> None:
    provider, kind, bob = setup
    target = api.slot_at(provider["id"], NINE + timedelta(hours=2))
    cancelled = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    api.ok("POST", f"/clients/{bob['id']}/reservations/{cancelled['id']}/cancel")
    response = move(api, bob["id"], cancelled["id"], target)
    assert (response.status_code, response.json()["code"]) == (409, "reservation_cancelled")
    expiring = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    clock.advance(minutes=31)
    response = move(api, bob["id"], expiring["id"], target)
    assert (response.status_code, response.json()["code"]) == (409, "reservation_expired")


def test_unknown_or_foreign_things_are_404(api: Api, setup: tuple[Json, Json, Json]) -> None:
    provider, kind, bob = setup
    eve = api.customer("Eve", "eve@example.com")
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    elsewhere = api.provider("Elsewhere")
    foreign_slot = api.slot(elsewhere["id"], NINE)["id"]
    target = api.slot_at(provider["id"], NINE + timedelta(hours=2))
    for client_id, reservation_id, slot_id in (
        (eve["id"], held["id"], target),  # another client's reservation
        (bob["id"], NIL, target),
        (bob["id"], held["id"], NIL),
        (bob["id"], held["id"], foreign_slot),  # a slot of another provider
        (NIL, held["id"], target),
    ):
        response = move(api, client_id, reservation_id, slot_id)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    response = api.client.post(
        f"/providers/{elsewhere['id']}/reservations/{held['id']}/reschedule",
        json={"slot_id": foreign_slot},
    )
    assert response.status_code == 404


def test_the_new_start_obeys_notice_and_horizon(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], START + timedelta(hours=20), START + timedelta(days=3, hours=2))
    kind = api.appointment_type(provider["id"], duration_minutes=15, max_advance_days=2)
    held = api.reserve_type(
        bob["id"], api.slot_at(provider["id"], START + timedelta(days=1, hours=1)), kind["id"]
    ).json()
    soon = api.slot_at(provider["id"], START + timedelta(hours=23))
    response = move(api, bob["id"], held["id"], soon)
    assert (response.status_code, response.json()["code"]) == (422, "too_late_to_book")
    far = api.slot_at(provider["id"], START + timedelta(days=2, minutes=15))
    response = move(api, bob["id"], held["id"], far)
    assert (response.status_code, response.json()["code"]) == (422, "too_far_ahead")


def test_change_notice_binds_clients_but_not_providers_or_admins(
    api: Api, setup: tuple[Json, Json, Json], clock: Any
) -> None:
    provider, _, bob = setup
    strict = api.appointment_type(
        provider["id"], duration_minutes=15, change_notice_minutes=48 * 60
    )
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), strict["id"]).json()
    api.confirm(bob["id"], held["id"])
    clock.set(NINE - timedelta(hours=47))
    as_client = bearer(Role.CLIENT, bob["id"])
    target = api.slot_at(provider["id"], NINE + timedelta(hours=1))
    response = move(api, bob["id"], held["id"], target, headers=as_client)
    assert (response.status_code, response.json()["code"]) == (409, "too_late_to_change")
    response = api.client.post(
        f"/clients/{bob['id']}/reservations/{held['id']}/cancel", headers=as_client
    )
    assert (response.status_code, response.json()["code"]) == (409, "too_late_to_change")
    # The same calls from an admin (the test client's default token) go through.
    assert move(api, bob["id"], held["id"], target).status_code == 200
    as_provider = bearer(Role.PROVIDER, provider["id"])
    back = api.client.post(
        f"/providers/{provider['id']}/reservations/{held['id']}/reschedule",
        json={"slot_id": api.slot_at(provider["id"], NINE)},
        headers=as_provider,
    )
    assert back.status_code == 200, back.text
    cancel = api.client.post(
        f"/providers/{provider['id']}/reservations/{held['id']}/cancel", headers=as_provider
    )
    assert cancel.json()["status"] == "cancelled"


def test_a_reservation_does_not_count_against_the_cap_for_itself(
    api: Api, setup: tuple[Json, Json, Json]
) -> None:
    provider, _, bob = setup
    capped = api.appointment_type(provider["id"], duration_minutes=15, max_per_day=1)
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), capped["id"]).json()
    same_day = api.slot_at(provider["id"], NINE + timedelta(hours=3))
    assert move(api, bob["id"], held["id"], same_day).status_code == 200
    # Another day that already has its one booking refuses it.
    next_day = NINE + timedelta(days=1)
    api.publish(provider["id"], next_day, next_day + timedelta(hours=1))
    eve = api.customer("Eve", "eve@example.com")
    api.reserve_type(eve["id"], api.slot_at(provider["id"], next_day), capped["id"])
    response = move(
        api, bob["id"], held["id"], api.slot_at(provider["id"], next_day + timedelta(minutes=30))
    )
    assert (response.status_code, response.json()["code"]) == (409, "daily_limit_reached")


def test_a_plain_one_slot_reservation_moves_too(api: Api, setup: tuple[Json, Json, Json]) -> None:
    provider, _, bob = setup
    held = api.reserve(bob["id"], api.slot_at(provider["id"], NINE)).json()
    assert held["appointment_type_id"] is None
    response = move(
        api, bob["id"], held["id"], api.slot_at(provider["id"], NINE + timedelta(minutes=30))
    )
    assert response.status_code == 200
    assert (response.json()["start_time"], response.json()["end_time"]) == (at(30), at(45))
    states = api.slot_states(provider["id"])
    assert [m for m in range(0, 240, 15) if states[at(m)] == "reserved"] == [30]


def test_moving_to_where_it_already_is_changes_nothing(
    api: Api, setup: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = setup
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    before = api.slot_states(provider["id"])
    response = move(api, bob["id"], held["id"], held["slot_id"])
    assert response.status_code == 200
    assert response.json() == held
    assert api.slot_states(provider["id"]) == before
    assert api.links() == 4


@pytest.mark.parametrize("typed", [False, True])
def test_a_client_cannot_move_or_cancel_a_booking_that_has_started(
    api: Api, setup: tuple[Json, Json, Json], clock: Any, typed: bool
) -> None:
    """Plain or of a type without change notice: once it has started (here it ended 3 h
    ago), moving it into the future would be a free new booking."""
    provider, kind, bob = setup
    first = api.slot_at(provider["id"], NINE)
    held = (
        api.reserve_type(bob["id"], first, kind["id"]) if typed else api.reserve(bob["id"], first)
    ).json()
    api.confirm(bob["id"], held["id"])
    clock.set(NINE + timedelta(hours=4))
    later = NINE + timedelta(days=3)
    api.publish(provider["id"], later, later + timedelta(hours=1))
    as_client = bearer(Role.CLIENT, bob["id"])
    moved = move(api, bob["id"], held["id"], api.slot_at(provider["id"], later), headers=as_client)
    assert (moved.status_code, moved.json()["code"]) == (409, "too_late_to_change")
    cancelled = api.client.post(
        f"/clients/{bob['id']}/reservations/{held['id']}/cancel", headers=as_client
    )
    assert (cancelled.status_code, cancelled.json()["code"]) == (409, "too_late_to_change")
    (listed,) = api.ok("GET", f"/clients/{bob['id']}/reservations")["items"]
    assert (listed["status"], listed["start_time"]) == ("confirmed", at(0))
