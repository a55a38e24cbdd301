"""Idempotency-Key on reserve, confirm and cancel."""

import threading
from datetime import timedelta

import httpx
import pytest

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, Json, bearer
from tests.conftest import START
from tests.live_server import live_server, publish_ahead, run_at_once

DAY = START + timedelta(days=3)


def keyed(api: Api, path: str, key: str, body: Json | None = None) -> httpx.Response:
    response: httpx.Response = api.client.post(path, json=body, headers={"Idempotency-Key": key})
    return response


@pytest.fixture
def world(api: Api) -> dict[str, Json]:
    provider = api.provider()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    return {
        "provider": provider,
        "bob": api.customer(),
        "eve": api.customer("Eve", "eve@example.com"),
        "slot": slots[0],
        "other_slot": slots[1],
    }


def test_retry_after_a_lost_response_replays_without_reserving_twice(
    api: Api, world: dict[str, Json], clock: FrozenClock
) -> None:
    path = f"/clients/{world['bob']['id']}/reserve"
    body = {"slot_id": world["slot"]["id"]}
    first = keyed(api, path, "retry-1", body)  # the answer that got "lost" on the way
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    clock.advance(seconds=20)
    retry = keyed(api, path, "retry-1", body)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 1
    # Without the key the same request is a new attempt, refused because the slot is held.
    assert api.reserve(world["bob"]["id"], world["slot"]["id"]).status_code == 409


def test_same_key_with_another_body_is_422(api: Api, world: dict[str, Json]) -> None:
    path = f"/clients/{world['bob']['id']}/reserve"
    assert keyed(api, path, "k", {"slot_id": world["slot"]["id"]}).status_code == 201
    reused = keyed(api, path, "k", {"slot_id": world["other_slot"]["id"]})
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert api.live_reservations(world["other_slot"]["id"]) == 0


def test_refusals_are_replayed_too(api: Api, world: dict[str, Json]) -> None:
    eve_path = f"/clients/{world['eve']['id']}/reserve"
    held = api.reserve(world["bob"]["id"], world["slot"]["id"]).json()
    refused = keyed(api, eve_path, "eve-1", {"slot_id": world["slot"]["id"]})
    assert (refused.status_code, refused.json()["code"]) == (409, "slot_unavailable")
    assert refused.headers["content-type"] == "application/problem+json"
    api.client.post(f"/clients/{world['bob']['id']}/reservations/{held['id']}/cancel")
    replay = keyed(api, eve_path, "eve-1", {"slot_id": world["slot"]["id"]})
    assert (replay.status_code, replay.json()) == (409, refused.json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert api.live_reservations(world["slot"]["id"]) == 0


def test_keys_are_scoped_to_the_client_and_the_operation(api: Api, world: dict[str, Json]) -> None:
    bob, eve = world["bob"]["id"], world["eve"]["id"]
    bobs = keyed(api, f"/clients/{bob}/reserve", "same", {"slot_id": world["slot"]["id"]})
    eves = keyed(api, f"/clients/{eve}/reserve", "same", {"slot_id": world["other_slot"]["id"]})
    assert (bobs.status_code, eves.status_code) == (201, 201)
    confirmed = keyed(api, f"/clients/{bob}/confirm", "same", {"reservation_id": bobs.json()["id"]})
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed"


def test_confirm_and_cancel_replay(api: Api, world: dict[str, Json], clock: FrozenClock) -> None:
    bob = world["bob"]["id"]
    held = api.reserve(bob, world["slot"]["id"]).json()
    body = {"reservation_id": held["id"]}
    first = keyed(api, f"/clients/{bob}/confirm", "c1", body)
    clock.advance(minutes=1)
    assert keyed(api, f"/clients/{bob}/confirm", "c1", body).json() == first.json()
    cancel = f"/clients/{bob}/reservations/{held['id']}/cancel"
    cancelled = keyed(api, cancel, "x1")
    clock.advance(minutes=1)
    again = keyed(api, cancel, "x1")
    assert again.json() == cancelled.json()
    assert again.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
    provider_cancel = f"/providers/{world['provider']['id']}/reservations/{held['id']}/cancel"
    assert keyed(api, provider_cancel, "p1", {"remove_slot": False}).status_code == 200
    assert keyed(api, provider_cancel, "p1", {"remove_slot": True}).status_code == 422


def test_keys_expire_after_24_hours(api: Api, world: dict[str, Json], clock: FrozenClock) -> None:
    path = f"/clients/{world['bob']['id']}/reserve"
    assert keyed(api, path, "daily", {"slot_id": world["slot"]["id"]}).status_code == 201
    clock.advance(hours=24, seconds=1)
    fresh = keyed(api, path, "daily", {"slot_id": world["other_slot"]["id"]})
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    api.ok("POST", "/admin/expire-reservations")
    clock.advance(hours=25)
    api.ok("POST", "/admin/expire-reservations")
    assert api.sql("SELECT count(*) FROM idempotency_keys")[0][0] == 0


@pytest.mark.parametrize("key", ["", "a" * 256, "has space", "tab\there", "ünicode"])
def test_malformed_keys_are_422(api: Api, world: dict[str, Json], key: str) -> None:
    response = api.client.post(
        f"/clients/{world['bob']['id']}/reserve",
        json={"slot_id": world["slot"]["id"]},
        headers=[(b"Idempotency-Key", key.encode("utf-8"))],
    )
    assert response.status_code == 422
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0


@pytest.mark.live
def test_parallel_retries_with_one_key_do_the_work_once(database_url: str, api: Api) -> None:
    admin = bearer(Role.ADMIN, "idem")
    with live_server(database_url) as base, httpx.Client(base_url=base, headers=admin) as http:
        _, slots = publish_ahead(http, "P", timedelta(minutes=30))
        bob = http.post("/clients", json={"name": "B", "email": "b@example.com"}).json()
        answers: list[tuple[int, str]] = []
        lock = threading.Lock()

        def send() -> None:
            with httpx.Client(base_url=base, headers=admin, timeout=30) as own:
                response = own.post(
                    f"/clients/{bob['id']}/reserve",
                    json={"slot_id": slots[0]["id"]},
                    headers={"Idempotency-Key": "one-click"},
                )
                with lock:
                    answers.append((response.status_code, response.text))

        run_at_once([send] * 12)
    assert {status for status, _ in answers} == {201}, answers
    assert len({text for _, text in answers}) == 1
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 1
