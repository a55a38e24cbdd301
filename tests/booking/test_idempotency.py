"""Idempotency-Key on reserve, confirm and cancel."""

import functools
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, Json, bearer
from tests.conftest import START
from tests.gate import gate
from tests.live_server import live_server, publish_ahead, run_at_once, start_all

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
    assert "idempotent-replayed" not in first.headers
    clock.advance(minutes=1)
    # Confirm and cancel answer the same when repeated without a key, so what shows
    # the replay is its header and the one stored answer per key.
    confirmed_again = keyed(api, f"/clients/{bob}/confirm", "c1", body)
    assert confirmed_again.headers["idempotent-replayed"] == "true"
    assert confirmed_again.json() == first.json()
    cancel = f"/clients/{bob}/reservations/{held['id']}/cancel"
    cancelled = keyed(api, cancel, "x1")
    assert "idempotent-replayed" not in cancelled.headers
    clock.advance(minutes=1)
    again = keyed(api, cancel, "x1")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == cancelled.json()
    assert again.json()["cancelled_at"] == cancelled.json()["cancelled_at"]
    provider_cancel = f"/providers/{world['provider']['id']}/reservations/{held['id']}/cancel"
    assert keyed(api, provider_cancel, "p1", {"remove_slot": False}).status_code == 200
    assert keyed(api, provider_cancel, "p1", {"remove_slot": True}).status_code == 422
    stored = api.sql("SELECT operation, key, status_code FROM idempotency_keys ORDER BY key")
    assert stored == [("confirm", "c1", 200), ("provider_cancel", "p1", 200), ("cancel", "x1", 200)]


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


ADMIN = bearer(Role.ADMIN, "idem")
RACERS = 8


def _post(base: str, path: str, body: Json, key: str) -> tuple[int, str, bool]:
    with httpx.Client(base_url=base, headers=ADMIN, timeout=60) as own:
        response = own.post(path, json=body, headers={"Idempotency-Key": key})
        return response.status_code, response.text, "idempotent-replayed" in response.headers


@pytest.mark.live
def test_parallel_retries_with_one_key_do_the_work_once(database_url: str, api: Api) -> None:
    """The first request with the key holds its row; the rest are seen waiting on it
    (PostgreSQL), then replay its answer."""
    # A pool wide enough that every racer holds a connection (and shows in pg_stat_activity).
    with (
        live_server(database_url, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        _, slots = publish_ahead(http, "P", timedelta(minutes=30))
        bob = http.post("/clients", json={"name": "B", "email": "b@example.com"}).json()
        path, body = f"/clients/{bob['id']}/reserve", {"slot_id": slots[0]["id"]}
        if api.dialect != "postgresql":
            answers = run_at_once([functools.partial(_post, base, path, body, "one-click")] * 12)
        else:
            with gate(database_url) as held, ThreadPoolExecutor(12) as pool:
                # The client's row: every reserve locks it first, after taking the key.
                held.hold("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE", uuid.UUID(bob["id"]))
                futures = start_all(
                    pool, [functools.partial(_post, base, path, body, "one-click")] * 12
                )
                held.wait_for(12)  # 1 on the client's row, 11 on the first one's key
                held.release()
                answers = [future.result() for future in futures]
    assert {status for status, _, _ in answers} == {201}, answers
    assert len({text for _, text, _ in answers}) == 1
    assert sorted(replayed for _, _, replayed in answers) == [False] + [True] * 11
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 1


@pytest.mark.live
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_retries_with_an_expired_key_run_once(database_url: str, api: Api) -> None:
    """A key past its 24 hours is taken over by exactly one of its concurrent retries;
    the others, seen waiting on the key's row, replay that one's answer."""
    # A pool wide enough that every racer holds a connection (and shows in pg_stat_activity).
    with (
        live_server(database_url, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        _, slots = publish_ahead(http, "P", timedelta(minutes=60))
        bob = http.post("/clients", json={"name": "B", "email": "b@example.com"}).json()
        held = http.post(f"/clients/{bob['id']}/reserve", json={"slot_id": slots[0]["id"]})
        path = f"/clients/{bob['id']}/reservations/{held.json()['id']}/reschedule"
        assert _post(base, path, {"slot_id": slots[1]["id"]}, "move")[0] == 200
        body = {"slot_id": slots[2]["id"]}
        with gate(database_url) as key_row, ThreadPoolExecutor(RACERS) as pool:
            key_row.sql("UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'")
            key_row.hold("SELECT 1 FROM idempotency_keys WHERE key = 'move' FOR UPDATE")
            futures = start_all(pool, [functools.partial(_post, base, path, body, "move")] * RACERS)
            key_row.wait_for(RACERS)
            key_row.release()
            answers = [future.result() for future in futures]
    ran = [answer for answer in answers if not answer[2]]
    assert [status for status, _, _ in ran] == [200], answers
    assert {(status, text) for status, text, _ in answers} == {(200, ran[0][1])}, answers
    events = api.sql("SELECT count(*) FROM events WHERE type = 'reservation.rescheduled'")
    assert events == [(2,)]
