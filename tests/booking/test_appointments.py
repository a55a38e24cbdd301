"""Reserving appointments longer than a slot: all slots or none, one appointment throughout."""

from datetime import timedelta
from typing import Any

import pytest
from icalendar import Calendar

from appointments.scheduling import holds
from tests.api import Api, Json, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
NINE = DAY.replace(hour=9)
NIL = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def clinic(api: Api) -> tuple[Json, Json, Json]:
    """A provider with 09:00-12:00 published, a 45-minute type with 15 minutes after, Bob."""
    provider = api.provider()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=3))
    kind = api.appointment_type(provider["id"], buffer_after_minutes=15)
    return provider, kind, api.customer()


def at(minutes: int) -> str:
    return iso(NINE + timedelta(minutes=minutes))


def test_a_45_minute_booking_holds_its_slots_and_buffer_as_one(
    api: Api, clinic: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = clinic
    response = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"])
    assert response.status_code == 201, response.text
    held = response.json()
    assert held["status"] == "held"
    assert held["appointment_type_id"] == kind["id"]
    assert (held["start_time"], held["end_time"]) == (at(0), at(45))
    assert held["slot_id"] == api.slot_at(provider["id"], NINE)
    states = api.slot_states(provider["id"])
    assert [states[at(m)] for m in (0, 15, 30, 45, 60)] == ["reserved"] * 4 + ["available"]
    assert api.links() == 4

    confirmed = api.confirm(bob["id"], held["id"]).json()
    assert confirmed["status"] == "confirmed"
    states = api.slot_states(provider["id"])
    assert [states[at(m)] for m in (0, 15, 30, 45, 60)] == ["confirmed"] * 4 + ["available"]

    # Lists and the calendar show one appointment with its real start and end.
    listed = api.ok("GET", f"/clients/{bob['id']}/reservations")["items"]
    assert [(r["start_time"], r["end_time"]) for r in listed] == [(at(0), at(45))]
    by_provider = api.ok("GET", f"/providers/{provider['id']}/reservations")["items"]
    assert [r["id"] for r in by_provider] == [held["id"]]
    calendar = Calendar.from_ical(api.client.get(f"/clients/{bob['id']}/reservations.ics").text)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == NINE
    assert event.decoded("DTEND") == NINE + timedelta(minutes=45)

    cancelled = api.ok("POST", f"/clients/{bob['id']}/reservations/{held['id']}/cancel")
    assert cancelled["status"] == "cancelled"
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    assert api.links() == 0


def test_a_plain_reserve_cannot_take_a_buffer_slot(
    api: Api, clinic: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = clinic
    api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"])
    eve = api.customer("Eve", "eve@example.com")
    buffer_slot = api.slot_at(provider["id"], NINE + timedelta(minutes=45))
    response = api.reserve(eve["id"], buffer_slot)
    assert (response.status_code, response.json()["code"]) == (409, "slot_unavailable")
    # An overlapping appointment is refused too, and the one right after the buffer fits.
    overlapping = api.slot_at(provider["id"], NINE + timedelta(minutes=30))
    assert api.reserve_type(eve["id"], overlapping, kind["id"]).status_code == 409
    after = api.slot_at(provider["id"], NINE + timedelta(hours=1))
    assert api.reserve_type(eve["id"], after, kind["id"]).status_code == 201


def test_refusals_come_in_the_contracts_order(api: Api, clinic: tuple[Json, Json, Json]) -> None:
    provider, kind, bob = clinic
    other = api.provider("Other")
    foreign = api.appointment_type(other["id"])
    first = api.slot_at(provider["id"], NINE)

    def refused(slot_id: str, type_id: str, client_id: str = bob["id"]) -> tuple[int, str]:
        response = api.reserve_type(client_id, slot_id, type_id)
        return response.status_code, response.json()["code"]

    assert refused(first, NIL) == (404, "not_found")
    assert refused(first, "zz") == (404, "not_found")
    assert refused(first, foreign["id"]) == (404, "not_found")  # a type of another provider
    assert refused(NIL, kind["id"]) == (404, "not_found")
    assert refused(first, kind["id"], NIL) == (404, "not_found")

    picky = api.appointment_type(provider["id"], min_notice_minutes=4 * 24 * 60)
    assert refused(first, picky["id"]) == (422, "too_late_to_book")
    near = api.appointment_type(provider["id"], max_advance_days=1)
    assert refused(first, near["id"]) == (422, "too_far_ahead")

    # The buffer would need 12:00, which was never published.
    assert refused(
        api.slot_at(provider["id"], NINE + timedelta(hours=2, minutes=15)), kind["id"]
    ) == (
        409,
        "slot_unavailable",
    )
    capped = api.appointment_type(provider["id"], duration_minutes=15, max_per_day=1)
    assert api.reserve_type(bob["id"], first, capped["id"]).status_code == 201
    later = api.slot_at(provider["id"], NINE + timedelta(hours=1))
    assert refused(later, capped["id"]) == (409, "daily_limit_reached")
    for minutes in (75, 90):
        slot = api.slot_at(provider["id"], NINE + timedelta(minutes=minutes))
        assert api.reserve(bob["id"], slot).status_code == 201
    assert refused(api.slot_at(provider["id"], NINE + timedelta(minutes=105)), kind["id"]) == (
        409,
        "too_many_holds",
    )
    assert api.sql("SELECT count(*) FROM reservations") == [(3,)]


def test_a_run_out_hold_frees_every_slot_and_the_sweep_writes_it_down(
    api: Api, clinic: tuple[Json, Json, Json], clock: Any
) -> None:
    provider, kind, bob = clinic
    first = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    clock.advance(minutes=31)
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    # Lazy: another client takes an overlapping appointment before any sweep.
    eve = api.customer("Eve", "eve@example.com")
    second = api.reserve_type(
        eve["id"], api.slot_at(provider["id"], NINE + timedelta(minutes=30)), kind["id"]
    )
    assert second.status_code == 201, second.text
    statuses = dict(api.sql("SELECT client_id, status FROM reservations"))
    assert statuses[api.db_id(first["client_id"])] == "expired"
    clock.advance(minutes=31)
    assert api.ok("POST", "/admin/expire-reservations") == {"expired": 1}
    assert api.links() == 0
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    confirm = api.confirm(eve["id"], second.json()["id"])
    assert (confirm.status_code, confirm.json()["code"]) == (409, "reservation_expired")


def test_a_failure_halfway_through_the_claim_leaves_nothing_claimed(
    api: Api, clinic: tuple[Json, Json, Json], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, kind, bob = clinic
    calls: list[int] = []

    async def link_then_fail(*args: Any, **kwargs: Any) -> None:
        ((_, _, slot_ids),) = args[1]
        calls.append(len(slot_ids))
        raise RuntimeError("injected after the slots were claimed")

    monkeypatch.setattr(holds, "link_many", link_then_fail)
    response = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"])
    assert response.status_code == 500
    assert calls == [4]  # the four slots had been claimed by then
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    assert api.sql("SELECT count(*) FROM reservations") == [(0,)]
    assert api.links() == 0


def test_deleting_the_client_frees_every_slot_of_its_appointment(
    api: Api, clinic: tuple[Json, Json, Json]
) -> None:
    provider, kind, bob = clinic
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).json()
    api.confirm(bob["id"], held["id"])
    api.ok("DELETE", f"/clients/{bob['id']}", 204)
    assert set(api.slot_states(provider["id"]).values()) == {"available"}
    assert api.links() == 0
    eve = api.customer("Eve", "eve@example.com")
    assert (
        api.reserve_type(eve["id"], api.slot_at(provider["id"], NINE), kind["id"]).status_code
        == 201
    )
