"""Concurrency proven against real server processes, not by reasoning."""

import functools
import uuid
from datetime import timedelta

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.gate import race
from tests.live_server import create_clients, live_server, publish_ahead

RACERS = 50
ADMIN = bearer(Role.ADMIN, "race-admin")


@pytest.mark.live
def test_fifty_clients_racing_for_one_slot_leave_exactly_one_winner(
    database_url: str, api: Api
) -> None:
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        _, (slot,) = publish_ahead(http, "Dr Race", timedelta(minutes=15))
        clients = create_clients(http, RACERS)

        def reserve(client_id: str) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                response = own.post(f"/clients/{client_id}/reserve", json={"slot_id": slot["id"]})
                return response.status_code, response.json().get("code", "")

        answers = race(database_url, [functools.partial(reserve, c["id"]) for c in clients])

    codes = sorted(status for status, _ in answers)
    assert codes == [201] + [409] * (RACERS - 1), answers
    assert {code for status, code in answers if status == 409} == {"slot_unavailable"}
    assert api.live_reservations(slot["id"]) == 1
    assert api.sql("SELECT status FROM slots") == [("reserved",)]


@pytest.mark.live
def test_many_clients_racing_over_few_slots_never_double_book(database_url: str, api: Api) -> None:
    """40 clients each try every one of 5 slots in a different order; 5 winners in all."""
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        _, slots = publish_ahead(http, "Dr Race", timedelta(minutes=75))
        clients = create_clients(http, 40)

        def try_in_turn(index: int, client_id: str) -> str | None:
            order = slots[index % 5 :] + slots[: index % 5]
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                for slot in order:
                    response = own.post(
                        f"/clients/{client_id}/reserve", json={"slot_id": slot["id"]}
                    )
                    assert response.status_code in (201, 409), response.text
                    if response.status_code == 201:
                        return str(slot["id"])
            return None

        won = race(
            database_url,
            [functools.partial(try_in_turn, i, c["id"]) for i, c in enumerate(clients)],
        )

    wins = [slot_id for slot_id in won if slot_id is not None]
    assert sorted(wins) == sorted(s["id"] for s in slots)
    for slot in slots:
        assert api.live_reservations(slot["id"]) == 1


@pytest.mark.live
def test_a_burst_of_reserves_by_one_client_never_exceeds_the_hold_limit(
    database_url: str, api: Api
) -> None:
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        _, slots = publish_ahead(http, "Dr Burst", timedelta(hours=5))
        bob = http.post("/clients", json={"name": "Bob", "email": "bob@example.com"}).json()

        def reserve(slot_id: str) -> tuple[int, str]:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                response = own.post(f"/clients/{bob['id']}/reserve", json={"slot_id": slot_id})
                return response.status_code, response.json().get("code", "")

        answers = race(database_url, [functools.partial(reserve, s["id"]) for s in slots])

    assert sorted(answers) == [(201, "")] * 3 + [(409, "too_many_holds")] * (len(slots) - 3)
    rows = api.sql("SELECT count(*) FROM reservations WHERE status = 'held'")
    assert rows[0][0] == 3
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'reserved'")[0][0] == 3


@pytest.mark.live
@pytest.mark.parametrize("cancel_conflicts", [False, True])
def test_window_removal_racing_with_reserves_keeps_or_reports_every_booking(
    database_url: str, api: Api, cancel_conflicts: bool
) -> None:
    """A provider withdraws a window while 20 clients reserve in it: every successful
    reservation ends up either kept (and the removal refused, listing it) or
    cancelled and reported; nothing is dropped silently."""
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider, slots = publish_ahead(http, "Dr Edit", timedelta(hours=5))
        start, end = slots[0]["start_time"], slots[-1]["end_time"]
        clients = create_clients(http, 20)

        def reserve(client_id: str, slot_id: str) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                return own.post(f"/clients/{client_id}/reserve", json={"slot_id": slot_id})

        def withdraw() -> httpx.Response:
            with httpx.Client(base_url=base, timeout=30, headers=ADMIN) as own:
                return own.delete(
                    f"/providers/{provider['id']}/availability",
                    params={"from": start, "to": end, "cancel_conflicts": cancel_conflicts},
                )

        *reserves, answer = race(
            database_url,
            [
                functools.partial(reserve, c["id"], s["id"])
                for c, s in zip(clients, slots, strict=False)
            ]
            + [withdraw],
        )

    reserved = {r.json()["id"] for r in reserves if r.status_code == 201}
    refusals = [r.status_code for r in reserves if r.status_code != 201]
    assert set(refusals) <= {404, 409}, refusals
    rows = api.sql(
        "SELECT r.id, r.status, s.status FROM reservations r JOIN slots s ON s.id = r.slot_id"
    )
    state = {str(uuid.UUID(str(rid))): (res, slot) for rid, res, slot in rows}
    assert set(state) == set(reserved)
    for reservation_id, (status, slot_status) in state.items():
        assert not (status == "held" and slot_status == "removed"), reservation_id
    if answer.status_code == 409:
        assert not cancel_conflicts
        reported = {c["reservation_id"] for c in answer.json()["conflicts"]}
        assert reported
        assert reported <= set(reserved)
        assert all(status == "held" for status, _ in state.values())
        assert api.sql("SELECT count(*) FROM slots WHERE status = 'removed'")[0][0] == 0
    else:
        assert answer.status_code == 200, answer.text
        cancelled = {c["reservation_id"] for c in answer.json()["cancelled"]}
        # Every booking made before the removal was cancelled and reported; none after.
        assert cancelled == set(reserved)
        assert all(status == "cancelled" for status, _ in state.values())
        assert api.sql("SELECT count(*) FROM slots WHERE status <> 'removed'")[0][0] == 0
