"""Cancellation by client and provider, and the lists of reservations."""

from datetime import timedelta

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, Json, bearer, iso
from tests.conftest import START

DAY = START + timedelta(days=3)


def booked(api: Api) -> tuple[Json, Json, Json, Json]:
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    reservation = api.reserve(bob["id"], slot["id"]).json()
    return provider, bob, slot, reservation


def cancel_as_client(api: Api, client_id: str, reservation_id: str) -> object:
    return api.client.post(f"/clients/{client_id}/reservations/{reservation_id}/cancel")


def test_client_cancels_a_hold_and_the_slot_is_free_again(api: Api, clock: FrozenClock) -> None:
    provider, bob, slot, reservation = booked(api)
    clock.advance(minutes=5)
    response = api.client.post(f"/clients/{bob['id']}/reservations/{reservation['id']}/cancel")
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] == iso(START + timedelta(minutes=5))
    assert [s["id"] for s in api.slots(provider["id"])] == [slot["id"]]
    assert api.live_reservations(slot["id"]) == 0
    # Twice is harmless: the same reservation, unchanged.
    clock.advance(minutes=5)
    again = api.client.post(f"/clients/{bob['id']}/reservations/{reservation['id']}/cancel")
    assert (again.status_code, again.json()) == (200, cancelled)


def test_client_cancels_a_confirmed_booking(api: Api) -> None:
    provider, bob, slot, reservation = booked(api)
    assert api.confirm(bob["id"], reservation["id"]).status_code == 200
    response = api.client.post(f"/clients/{bob['id']}/reservations/{reservation['id']}/cancel")
    assert response.json()["status"] == "cancelled"
    assert api.sql("SELECT status FROM slots") == [("available",)]
    eve = api.customer("Eve", "eve@example.com")
    assert api.reserve(eve["id"], slot["id"]).status_code == 201
    # Confirming a cancelled reservation is refused.
    refused = api.confirm(bob["id"], reservation["id"])
    assert refused.json()["code"] == "reservation_not_held"


def test_cancelling_a_run_out_hold_is_409(api: Api, clock: FrozenClock) -> None:
    _, bob, _, reservation = booked(api)
    clock.advance(minutes=30)
    response = api.client.post(f"/clients/{bob['id']}/reservations/{reservation['id']}/cancel")
    assert (response.status_code, response.json()["code"]) == (409, "reservation_expired")


def test_cancelling_someone_elses_or_unknown_reservation_is_404(api: Api) -> None:
    _, bob, _, reservation = booked(api)
    eve = api.customer("Eve", "eve@example.com")
    for client_id, reservation_id in (
        (eve["id"], reservation["id"]),
        (bob["id"], "00000000-0000-0000-0000-000000000000"),
        (bob["id"], "nope"),
    ):
        response = api.client.post(f"/clients/{client_id}/reservations/{reservation_id}/cancel")
        assert response.status_code == 404
    assert api.live_reservations(reservation["slot_id"]) == 1


def test_provider_cancels_and_may_withdraw_the_slot(api: Api) -> None:
    provider, bob, slot, reservation = booked(api)
    url = f"/providers/{provider['id']}/reservations/{reservation['id']}/cancel"
    response = api.client.post(url, json={"remove_slot": True})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert api.slots(provider["id"], status="all") == []
    assert api.reserve(bob["id"], slot["id"]).status_code == 404
    # Publishing the window again re-opens the slot (same id).
    again = api.publish(provider["id"], DAY, DAY + timedelta(minutes=15))
    assert [s["id"] for s in again["slots"]] == [slot["id"]]
    assert api.reserve(bob["id"], slot["id"]).status_code == 201


def test_provider_cancel_without_body_frees_the_slot(api: Api) -> None:
    provider, _, slot, reservation = booked(api)
    url = f"/providers/{provider['id']}/reservations/{reservation['id']}/cancel"
    assert api.client.post(url).json()["status"] == "cancelled"
    assert [s["id"] for s in api.slots(provider["id"])] == [slot["id"]]
    assert api.client.post(url, json={"remove_slot": "yes"}).status_code == 422


def test_provider_cannot_cancel_another_providers_reservation(api: Api) -> None:
    _, _, _, reservation = booked(api)
    other = api.provider("Other")
    url = f"/providers/{other['id']}/reservations/{reservation['id']}/cancel"
    assert api.client.post(url).status_code == 404
    token = bearer(Role.PROVIDER, other["id"])
    assert api.client.post(url, headers=token).status_code == 404


def test_reservation_lists_filter_and_page(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    bob = api.customer()
    eve = api.customer("Eve", "eve@example.com")
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=2))["slots"]
    mine = [api.reserve(bob["id"], slots[i]["id"]).json() for i in range(3)]
    api.confirm(bob["id"], mine[1]["id"])
    cancel_as_client(api, bob["id"], mine[2]["id"])
    mine.append(api.reserve(bob["id"], slots[3]["id"]).json())
    api.reserve(eve["id"], slots[4]["id"])
    clock.advance(minutes=10)
    mine.append(api.reserve(bob["id"], slots[5]["id"]).json())
    clock.advance(minutes=25)  # holds 0, 3 (and Eve's) ran out; hold 5 has 5 minutes left

    def ids(path: str, **query: object) -> list[str]:
        return [r["id"] for r in api.ok("GET", path, params=query)["items"]]

    bobs = f"/clients/{bob['id']}/reservations"
    assert ids(bobs) == [r["id"] for r in mine]
    assert ids(bobs, status="held") == [mine[4]["id"]]
    assert ids(bobs, status="confirmed") == [mine[1]["id"]]
    assert ids(bobs, status="cancelled") == [mine[2]["id"]]
    assert ids(bobs, status="expired") == [mine[0]["id"], mine[3]["id"]]
    window = {"from": iso(DAY + timedelta(minutes=15)), "to": iso(DAY + timedelta(minutes=45))}
    assert ids(bobs, **window) == [mine[1]["id"], mine[2]["id"]]
    statuses = [r["status"] for r in api.ok("GET", bobs)["items"]]
    assert statuses == ["expired", "confirmed", "cancelled", "expired", "held"]

    theirs = f"/providers/{provider['id']}/reservations"
    first = api.ok("GET", theirs, params={"limit": 4})
    rest = api.ok("GET", theirs, params={"limit": 4, "cursor": first["next_cursor"]})
    assert rest["next_cursor"] is None
    walked = [r["start_time"] for r in first["items"] + rest["items"]]
    assert walked == [s["start_time"] for s in slots[:6]]
    held = api.ok("GET", theirs, params={"status": "held"})["items"]
    assert [(r["id"], r["provider_id"]) for r in held] == [(mine[4]["id"], provider["id"])]
    assert api.client.get(theirs, params={"status": "gone"}).status_code == 422
