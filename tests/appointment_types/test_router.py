"""Appointment types: CRUD, validation, and who may write them."""

from datetime import timedelta
from typing import Any

import pytest

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.conftest import START

NIL = "00000000-0000-0000-0000-000000000000"
DEFAULTS = {
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "min_notice_minutes": None,
    "max_advance_days": None,
    "max_per_day": None,
    "change_notice_minutes": 0,
}


def test_a_type_is_created_read_listed_replaced_and_deleted(api: Api) -> None:
    provider = api.provider()
    created = api.appointment_type(provider["id"], buffer_after_minutes=15, max_per_day=4)
    assert created["provider_id"] == provider["id"]
    assert created["duration_minutes"] == 45
    assert created["buffer_after_minutes"] == 15
    assert created["max_per_day"] == 4
    assert created["created_at"] == created["updated_at"] == "2027-03-01T08:00:00Z"
    path = f"/providers/{provider['id']}/appointment-types/{created['id']}"
    assert api.ok("GET", path) == created

    replaced = api.ok("PUT", path, json={"name": "Long", "duration_minutes": 90})
    # PUT replaces: every omitted optional field takes its default again.
    assert replaced == created | DEFAULTS | {"name": "Long", "duration_minutes": 90}

    assert api.ok("DELETE", path, 204) is None
    assert api.client.get(path).status_code == 404
    assert api.ok("GET", f"/providers/{provider['id']}/appointment-types")["items"] == []


def test_types_are_listed_oldest_first_in_pages(api: Api, clock: Any) -> None:
    provider = api.provider()
    made = []
    for minutes in (15, 30, 45, 60, 75):
        made.append(api.appointment_type(provider["id"], duration_minutes=minutes)["id"])
        clock.advance(seconds=1)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", f"/providers/{provider['id']}/appointment-types", params=params)
        seen += [item["id"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == made


def test_unknown_and_foreign_types_are_404(api: Api) -> None:
    ada, bea = api.provider("Ada"), api.provider("Bea")
    kind = api.appointment_type(ada["id"])
    for path in (
        f"/providers/{bea['id']}/appointment-types/{kind['id']}",
        f"/providers/{ada['id']}/appointment-types/{NIL}",
        f"/providers/{ada['id']}/appointment-types/zz",
        f"/providers/{NIL}/appointment-types/{kind['id']}",
        f"/providers/{bea['id']}/appointment-types/{kind['id']}/availability",
    ):
        response = api.client.get(path)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), path
    for method in ("PUT", "DELETE"):
        response = api.client.request(
            method,
            f"/providers/{bea['id']}/appointment-types/{kind['id']}",
            json={"name": "X", "duration_minutes": 15} if method == "PUT" else None,
        )
        assert response.status_code == 404
    assert (
        api.client.post(
            f"/providers/{NIL}/appointment-types", json={"name": "X", "duration_minutes": 15}
        ).status_code
        == 404
    )
    assert api.ok("GET", f"/providers/{ada['id']}/appointment-types/{kind['id']}") == kind


@pytest.mark.parametrize(
    "fields",
    [
        {"duration_minutes": 20},  # not a slot multiple
        {"duration_minutes": 0},
        {"duration_minutes": 495},
        {"duration_minutes": "45"},  # no coercion
        {"duration_minutes": 45.0},
        {"buffer_before_minutes": 10},
        {"buffer_after_minutes": 255},
        {"buffer_after_minutes": -15},
        {"min_notice_minutes": 60},  # below the service's 24 hours
        {"min_notice_minutes": -1},
        {"max_advance_days": 0},
        {"max_advance_days": 731},
        {"max_per_day": 0},
        {"change_notice_minutes": -5},
        {"name": ""},
        {"name": "a\x00b"},
        {"colour": "red"},  # unknown field
    ],
)
def test_invalid_terms_are_422_and_create_nothing(api: Api, fields: dict[str, Any]) -> None:
    provider = api.provider()
    body = {"name": "Consultation", "duration_minutes": 45, **fields}
    response = api.client.post(f"/providers/{provider['id']}/appointment-types", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert api.sql("SELECT count(*) FROM appointment_types") == [(0,)]


def test_notice_equal_to_the_service_minimum_is_accepted(api: Api) -> None:
    provider = api.provider()
    kind = api.appointment_type(provider["id"], min_notice_minutes=24 * 60, max_advance_days=730)
    assert kind["min_notice_minutes"] == 1440


def test_only_the_provider_itself_or_an_admin_writes_types(api: Api) -> None:
    ada, bea = api.provider("Ada"), api.provider("Bea")
    bob = api.customer()
    body = {"name": "Check-up", "duration_minutes": 30}
    path = f"/providers/{ada['id']}/appointment-types"
    for headers, status in (
        (bearer(Role.PROVIDER, bea["id"]), 403),
        (bearer(Role.CLIENT, bob["id"]), 403),
        (bearer(Role.PROVIDER, ada["id"]), 201),
    ):
        assert api.client.post(path, json=body, headers=headers).status_code == status
    # Any token reads them.
    listing = api.client.get(path, headers=bearer(Role.CLIENT, bob["id"]))
    assert [item["name"] for item in listing.json()["items"]] == ["Check-up"]


def test_deleting_a_type_keeps_booked_appointments(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    day = START + timedelta(days=3)
    api.publish(provider["id"], day, day + timedelta(hours=2))
    kind = api.appointment_type(provider["id"], buffer_after_minutes=15)
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], day), kind["id"]).json()
    api.ok("DELETE", f"/providers/{provider['id']}/appointment-types/{kind['id']}", 204)
    listing = api.ok("GET", f"/clients/{bob['id']}/reservations")["items"]
    assert listing == [held]
    assert held["appointment_type_id"] == kind["id"]
    # Its slots stay occupied, and a new booking of the deleted type is refused.
    assert api.slot_states(provider["id"])["2027-03-04T08:45:00Z"] == "reserved"
    other = api.customer("Eve", "eve@example.com")
    later = api.slot_at(provider["id"], day + timedelta(hours=1))
    assert api.reserve_type(other["id"], later, kind["id"]).status_code == 404
