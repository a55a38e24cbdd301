"""Every reservation change writes its event in the same transaction; a rollback writes none."""

from datetime import timedelta
from typing import Any

import pytest

from appointments.clock import FrozenClock
from appointments.scheduling import slots
from tests.api import Api, iso
from tests.conftest import START

DAY = START + timedelta(days=3)


def events(api: Api) -> list[tuple[str, str]]:
    """(type, status in the snapshot), oldest first."""
    rows = api.sql("SELECT type, status FROM events ORDER BY occurred_at, type")
    return [(row[0], row[1]) for row in rows]


def test_hold_confirm_and_cancel_each_write_one_event(api: Api) -> None:
    provider, bob = api.provider(), api.customer()
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    api.ok("POST", f"/clients/{bob['id']}/confirm", json={"reservation_id": held["id"]})
    api.ok("POST", f"/clients/{bob['id']}/reservations/{held['id']}/cancel", json={})
    assert sorted(events(api)) == [
        ("reservation.cancelled", "cancelled"),
        ("reservation.confirmed", "confirmed"),
        ("reservation.held", "held"),
    ]
    snapshot = api.sql(
        "SELECT reservation_id, client_id, provider_id, start_time FROM events "
        "WHERE type = 'reservation.held'"
    )[0]
    assert snapshot[:3] == (api.db_id(held["id"]), api.db_id(bob["id"]), api.db_id(provider["id"]))
    # A repeated cancel changes nothing and tells nobody again.
    api.ok("POST", f"/clients/{bob['id']}/reservations/{held['id']}/cancel", json={})
    assert len(events(api)) == 3


@pytest.mark.parametrize("path", ["lazy", "sweep"])
def test_every_expiry_path_writes_one_expired_event(
    api: Api, clock: FrozenClock, path: str
) -> None:
    provider, bob, carol = api.provider(), api.customer(), api.customer("Carol", "c@example.com")
    slot = api.slot(provider["id"], DAY)
    api.reserve(bob["id"], slot["id"])
    clock.advance(hours=1)
    if path == "lazy":
        # Carol's reserve writes Bob's run-out hold down as expired first.
        assert api.reserve(carol["id"], slot["id"]).status_code == 201
    else:
        assert api.ok("POST", "/admin/expire-reservations") == {"expired": 1}
    expired = [e for e in events(api) if e[0] == "reservation.expired"]
    assert expired == [("reservation.expired", "expired")]
    # Nothing more expires: a second sweep records nothing new.
    api.ok("POST", "/admin/expire-reservations")
    assert len([e for e in events(api) if e[0] == "reservation.expired"]) == 1


def test_reschedule_and_availability_moves_record_the_previous_times(api: Api) -> None:
    provider, bob = api.provider(), api.customer()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=3))
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    first = api.slot_at(provider["id"], DAY)
    reservation = api.reserve_type(bob["id"], first, kind["id"]).json()
    later = api.slot_at(provider["id"], DAY + timedelta(hours=1))
    api.ok(
        "POST",
        f"/clients/{bob['id']}/reservations/{reservation['id']}/reschedule",
        json={"slot_id": later},
    )
    # The provider withdraws that hour; the booking moves to the next free start.
    api.ok(
        "DELETE",
        f"/providers/{provider['id']}/availability",
        params={
            "from": iso(DAY + timedelta(hours=1)),
            "to": iso(DAY + timedelta(hours=2)),
            "on_conflict": "move",
        },
    )
    rows = api.sql(
        "SELECT start_time, previous_start, revision FROM events "
        "WHERE type = 'reservation.rescheduled' ORDER BY revision"
    )
    assert len(rows) == 2
    times = [[str(value)[:16].replace(" ", "T") for value in row[:2]] + [row[2]] for row in rows]
    assert times == [
        [iso(DAY + timedelta(hours=1))[:16], iso(DAY)[:16], 1],
        [iso(DAY + timedelta(hours=2))[:16], iso(DAY + timedelta(hours=1))[:16], 2],
    ]


def test_deleting_a_client_or_provider_tells_of_each_cancelled_booking(api: Api) -> None:
    provider, bob = api.provider(), api.customer()
    first, second = (
        api.slot(provider["id"], DAY),
        api.slot(provider["id"], DAY + timedelta(hours=1)),
    )
    api.reserve(bob["id"], first["id"])
    api.reserve(bob["id"], second["id"])
    api.ok("DELETE", f"/clients/{bob['id']}", 204)
    assert [e for e in events(api) if e[0] == "reservation.cancelled"] == [
        ("reservation.cancelled", "cancelled")
    ] * 2
    carol = api.customer("Carol", "c@example.com")
    api.reserve(carol["id"], first["id"])
    api.ok("DELETE", f"/providers/{provider['id']}", 204, params={"cancel_conflicts": "true"})
    assert len([e for e in events(api) if e[0] == "reservation.cancelled"]) == 3


class InjectedFault(Exception):
    pass


def test_a_change_that_rolls_back_writes_no_event(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, bob = api.provider(), api.customer()
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    original = slots.mark_confirmed

    async def fail_after(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)
        raise InjectedFault

    monkeypatch.setattr(slots, "mark_confirmed", fail_after)
    # With a key the confirm runs in a transaction on both databases (without one,
    # PostgreSQL confirms in one statement: tests/booking/test_transactions.py).
    response = api.client.post(
        f"/clients/{bob['id']}/confirm",
        json={"reservation_id": held["id"]},
        headers={"Idempotency-Key": "rolled-back"},
    )
    assert response.status_code == 500
    assert events(api) == [("reservation.held", "held")]
    assert api.deliver().dispatched == 1  # only the hold's event is ever dispatched
