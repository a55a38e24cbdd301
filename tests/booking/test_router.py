from datetime import timedelta

import pytest

from appointments.clock import FrozenClock
from tests.api import Api, Json, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
NIL = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def setup(api: Api) -> tuple[Json, Json, Json, Json]:
    provider = api.provider()
    bob = api.customer("Bob", "bob@example.com")
    eve = api.customer("Eve", "eve@example.com")
    slot = api.slot(provider["id"], DAY)
    return provider, bob, eve, slot


def test_reserve_holds_the_slot_for_thirty_minutes(api: Api, setup: tuple[Json, ...]) -> None:
    provider, bob, _, slot = setup
    response = api.reserve(bob["id"], slot["id"])
    assert response.status_code == 201
    reservation = response.json()
    assert reservation["status"] == "held"
    assert reservation["slot_id"] == slot["id"]
    assert reservation["client_id"] == bob["id"]
    assert reservation["created_at"] == iso(START)
    assert reservation["expires_at"] == iso(START + timedelta(minutes=30))
    assert reservation["confirmed_at"] is None
    assert reservation["cancelled_at"] is None
    assert api.slots(provider["id"], status="reserved")[0]["id"] == slot["id"]
    assert api.live_reservations(slot["id"]) == 1


def test_second_client_cannot_reserve_a_held_slot(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, eve, slot = setup
    assert api.reserve(bob["id"], slot["id"]).status_code == 201
    response = api.reserve(eve["id"], slot["id"])
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"
    assert api.reserve(bob["id"], slot["id"]).status_code == 409
    assert api.live_reservations(slot["id"]) == 1


def test_confirmed_slot_cannot_be_reserved(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, eve, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    assert api.confirm(bob["id"], reservation["id"]).status_code == 200
    response = api.reserve(eve["id"], slot["id"])
    assert (response.status_code, response.json()["code"]) == (409, "slot_unavailable")


def test_reserve_unknown_client_or_slot_is_404(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, _, slot = setup
    for client_id, slot_id in (
        (NIL, slot["id"]),
        ("x", slot["id"]),
        (bob["id"], NIL),
        (bob["id"], "y"),
    ):
        response = api.reserve(client_id, slot_id)
        assert response.status_code == 404, (client_id, slot_id)
        assert response.json()["code"] == "not_found"
    assert api.live_reservations(slot["id"]) == 0


def test_reserve_validates_its_body(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, _, slot = setup
    for body in ({}, {"slot_id": 12}, {"slot_id": None}, {"slot_id": slot["id"], "extra": 1}):
        response = api.client.post(f"/clients/{bob['id']}/reserve", json=body)
        assert response.status_code == 422, body
    assert api.live_reservations(slot["id"]) == 0


def test_notice_rule_at_the_edge(api: Api, clock: FrozenClock, setup: tuple[Json, ...]) -> None:
    provider, bob, _, slot = setup
    # Exactly 24 h before the start: not *more* than 24 h, so refused.
    clock.set(DAY - timedelta(hours=24))
    response = api.reserve(bob["id"], slot["id"])
    assert response.status_code == 422
    assert response.json()["code"] == "too_late_to_book"
    assert "24 hours" in response.json()["detail"]
    assert api.slots(provider["id"]) == []
    # One microsecond earlier it is bookable, listed and reservable.
    clock.set(DAY - timedelta(hours=24, microseconds=1))
    assert [s["id"] for s in api.slots(provider["id"])] == [slot["id"]]
    assert api.reserve(bob["id"], slot["id"]).status_code == 201


def test_too_late_is_reported_before_slot_taken(
    api: Api, clock: FrozenClock, setup: tuple[Json, ...]
) -> None:
    _, bob, eve, slot = setup
    assert api.reserve(bob["id"], slot["id"]).status_code == 201
    clock.set(DAY - timedelta(hours=1))
    assert api.reserve(eve["id"], slot["id"]).json()["code"] == "too_late_to_book"


def test_confirm_turns_a_live_hold_into_a_booking(
    api: Api, clock: FrozenClock, setup: tuple[Json, ...]
) -> None:
    provider, bob, _, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    clock.advance(minutes=29)
    response = api.confirm(bob["id"], reservation["id"])
    assert response.status_code == 200
    confirmed = response.json()
    assert confirmed["status"] == "confirmed"
    assert confirmed["confirmed_at"] == iso(START + timedelta(minutes=29))
    assert confirmed["id"] == reservation["id"]
    assert api.slots(provider["id"], status="confirmed")[0]["id"] == slot["id"]
    # Long after the hold would have run out, the booking stands.
    clock.advance(hours=5)
    assert api.slots(provider["id"], status="confirmed")[0]["id"] == slot["id"]
    assert api.live_reservations(slot["id"]) == 1


def test_confirming_twice_is_harmless(
    api: Api, clock: FrozenClock, setup: tuple[Json, ...]
) -> None:
    _, bob, _, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    first = api.confirm(bob["id"], reservation["id"]).json()
    clock.advance(hours=1)
    second = api.confirm(bob["id"], reservation["id"])
    assert second.status_code == 200
    assert second.json() == first


def test_confirm_after_expiry_fails_and_slot_stays_free(
    api: Api, clock: FrozenClock, setup: tuple[Json, ...]
) -> None:
    provider, bob, eve, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    clock.advance(minutes=30)
    response = api.confirm(bob["id"], reservation["id"])
    assert response.status_code == 409
    assert response.json()["code"] == "reservation_expired"
    assert [s["id"] for s in api.slots(provider["id"])] == [slot["id"]]
    # Someone else takes it at once, without any sweep.
    taken = api.reserve(eve["id"], slot["id"])
    assert taken.status_code == 201
    assert api.live_reservations(slot["id"]) == 1
    statuses = dict(api.sql("SELECT client_id, status FROM reservations"))
    assert statuses[api.db_id(bob["id"])] == "expired"
    assert statuses[api.db_id(eve["id"])] == "held"
    # And the first client's old hold stays dead.
    again = api.confirm(bob["id"], reservation["id"])
    assert (again.status_code, again.json()["code"]) == (409, "reservation_expired")


def test_expired_hold_can_be_reserved_again_by_same_client(
    api: Api, clock: FrozenClock, setup: tuple[Json, ...]
) -> None:
    _, bob, _, slot = setup
    first = api.reserve(bob["id"], slot["id"]).json()
    clock.advance(minutes=31)
    second = api.reserve(bob["id"], slot["id"])
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_another_clients_reservation_is_404(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, eve, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    response = api.confirm(eve["id"], reservation["id"])
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    for client_id, reservation_id in (
        (bob["id"], NIL),
        (bob["id"], "zz"),
        (NIL, reservation["id"]),
    ):
        assert api.confirm(client_id, reservation_id).status_code == 404
    assert api.sql("SELECT status FROM reservations") == [("held",)]


def test_confirming_a_cancelled_reservation_is_not_held(api: Api, setup: tuple[Json, ...]) -> None:
    _, bob, _, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    api.sql(
        "UPDATE reservations SET status = 'cancelled', cancelled_at = expires_at WHERE id = :id",
        id=api.db_id(reservation["id"]),
    )
    response = api.confirm(bob["id"], reservation["id"])
    assert (response.status_code, response.json()["code"]) == (409, "reservation_not_held")


def test_the_database_refuses_a_second_live_reservation(api: Api, setup: tuple[Json, ...]) -> None:
    """The unique partial index holds even if application code were wrong."""
    _, bob, eve, slot = setup
    reservation = api.reserve(bob["id"], slot["id"]).json()
    with pytest.raises(Exception, match=r"(?i)unique"):
        api.sql(
            "INSERT INTO reservations (id, slot_id, provider_id, client_id, status, "
            "start_time, end_time, occupied_start, occupied_end, created_at, expires_at) "
            "SELECT :new_id, slot_id, provider_id, :eve, 'held', start_time, end_time, "
            "occupied_start, occupied_end, created_at, expires_at "
            "FROM reservations WHERE id = :id",
            new_id=api.db_id("11111111-1111-1111-1111-111111111111"),
            eve=api.db_id(eve["id"]),
            id=api.db_id(reservation["id"]),
        )
    assert api.live_reservations(slot["id"]) == 1


def test_hold_limit_counts_only_live_holds(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    bob = api.customer()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=2))["slots"]
    first = api.reserve(bob["id"], slots[0]["id"]).json()
    for slot in slots[1:3]:
        assert api.reserve(bob["id"], slot["id"]).status_code == 201
    refused = api.reserve(bob["id"], slots[3]["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "too_many_holds")
    assert api.live_reservations(slots[3]["id"]) == 0
    assert api.slots(provider["id"], status="all")[3]["status"] == "available"
    # A confirmed booking stops counting towards the limit.
    assert api.confirm(bob["id"], first["id"]).status_code == 200
    assert api.reserve(bob["id"], slots[3]["id"]).status_code == 201
    assert api.reserve(bob["id"], slots[4]["id"]).json()["code"] == "too_many_holds"
    # So does a hold that ran out.
    clock.advance(minutes=30)
    assert api.reserve(bob["id"], slots[4]["id"]).status_code == 201


def test_slot_taken_is_reported_before_the_hold_limit(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    eve = api.customer("Eve", "eve@example.com")
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    for slot in slots[:3]:
        assert api.reserve(bob["id"], slot["id"]).status_code == 201
    assert api.reserve(eve["id"], slots[3]["id"]).status_code == 201
    assert api.reserve(bob["id"], slots[3]["id"]).json()["code"] == "slot_unavailable"
