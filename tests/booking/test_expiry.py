"""Holds that run out: the admin endpoint, the in-process sweeper and the CLI."""

import time
from datetime import timedelta

from fastapi.testclient import TestClient

from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import Api, Json
from tests.conftest import START

DAY = START + timedelta(days=3)


def make_holds(api: Api, clock: FrozenClock) -> dict[str, Json]:
    """Two holds that will be stale, one live hold, one confirmed booking, one free slot."""
    provider = api.provider()
    bob = api.customer()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(minutes=75))["slots"]
    stale_a = api.reserve(bob["id"], slots[0]["id"]).json()
    stale_b = api.reserve(bob["id"], slots[1]["id"]).json()
    booked = api.reserve(bob["id"], slots[2]["id"]).json()
    api.confirm(bob["id"], booked["id"])
    clock.advance(minutes=20)
    live = api.reserve(bob["id"], slots[3]["id"]).json()
    clock.advance(minutes=11)  # the first two holds are now 31 minutes old
    return {
        "stale_a": stale_a,
        "stale_b": stale_b,
        "booked": booked,
        "live": live,
        "provider": provider,
    }


def statuses(api: Api) -> dict[str, str]:
    rows = api.sql("SELECT id, status FROM reservations")
    return {str(row[0]).replace("-", ""): row[1] for row in rows}


def hexid(value: str) -> str:
    return value.replace("-", "")


def assert_only_stale_holds_expired(api: Api, holds: dict[str, Json]) -> None:
    now = statuses(api)
    assert now[hexid(holds["stale_a"]["id"])] == "expired"
    assert now[hexid(holds["stale_b"]["id"])] == "expired"
    assert now[hexid(holds["booked"]["id"])] == "confirmed"
    assert now[hexid(holds["live"]["id"])] == "held"
    slot_rows = api.sql("SELECT status, count(*) FROM slots GROUP BY status ORDER BY status")
    assert slot_rows == [("available", 3), ("confirmed", 1), ("reserved", 1)]


def test_admin_endpoint_expires_exactly_the_stale_holds(api: Api, clock: FrozenClock) -> None:
    holds = make_holds(api, clock)
    # Before persisting, the stale holds already read as free / expired.
    assert len(api.slots(holds["provider"]["id"])) == 3
    assert api.ok("POST", "/admin/expire-reservations") == {"expired": 2}
    assert_only_stale_holds_expired(api, holds)
    assert api.ok("POST", "/admin/expire-reservations") == {"expired": 0}
    assert len(api.slots(holds["provider"]["id"])) == 3


def test_in_process_sweeper_expires_exactly_the_stale_holds(
    settings: Settings, clock: FrozenClock, api: Api
) -> None:
    holds = make_holds(api, clock)
    sweeping = settings.model_copy(update={"sweep_interval_seconds": 0.05})
    with TestClient(create_app(sweeping, clock)) as sweeper_client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if list(statuses(api).values()).count("expired") == 2:
                break
            time.sleep(0.05)
        assert_only_stale_holds_expired(Api(sweeper_client), holds)


def test_reservation_reads_as_expired_once_the_hold_ran_out(api: Api, clock: FrozenClock) -> None:
    holds = make_holds(api, clock)
    bob_id = holds["stale_a"]["client_id"]
    answer = api.confirm(bob_id, holds["stale_a"]["id"])
    assert (answer.status_code, answer.json()["code"]) == (409, "reservation_expired")
    listed = {
        r["id"]: r["status"] for r in api.ok("GET", f"/clients/{bob_id}/reservations")["items"]
    }
    assert listed[holds["stale_a"]["id"]] == "expired"
    assert statuses(api)[hexid(holds["stale_a"]["id"])] == "held"  # nothing persisted by reads


def test_a_refused_reserve_of_a_slot_under_a_run_out_hold_changes_nothing(
    api: Api, clock: FrozenClock
) -> None:
    """The one-statement reserve expired the run-out hold even when it then refused the
    client (hold limit): a refusal that wrote an expiry and its event. (Found by the
    differential test.) Now neither path writes anything for a refusal."""
    api.configure(max_holds_per_client=1)
    provider = api.provider()
    slots = api.publish(provider["id"], DAY, DAY + timedelta(minutes=30))["slots"]
    bob, eve = api.customer(), api.customer("Eve", "eve@example.com")
    api.reserve(bob["id"], slots[0]["id"])
    clock.advance(minutes=31)  # Bob's hold ran out, unswept
    assert api.reserve(eve["id"], slots[1]["id"]).status_code == 201
    refused = api.reserve(eve["id"], slots[0]["id"])  # Eve is at her limit
    assert (refused.status_code, refused.json()["code"]) == (409, "too_many_holds")
    assert sorted(api.sql("SELECT status FROM reservations")) == [("held",), ("held",)]
    assert api.sql("SELECT count(*) FROM events WHERE type = 'reservation.expired'") == [(0,)]
    assert api.links() == 2
    # A reserve that goes ahead expires it, in the same statement.
    api.configure(max_holds_per_client=2)
    assert api.reserve(eve["id"], slots[0]["id"]).status_code == 201
    assert api.sql("SELECT count(*) FROM events WHERE type = 'reservation.expired'") == [(1,)]
