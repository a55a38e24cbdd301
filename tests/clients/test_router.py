from datetime import timedelta

from appointments.clock import FrozenClock
from tests.api import Api
from tests.conftest import START

DAY = START + timedelta(days=3)


def test_create_get_and_list_clients(api: Api, clock: FrozenClock) -> None:
    bob = api.customer("Bob", "bob@example.com", phone_number="+4915112345678")
    assert bob["phone_number"] == "+4915112345678"
    assert api.ok("GET", f"/clients/{bob['id']}") == bob
    clock.advance(seconds=1)
    eve = api.customer("Eve", "eve@example.com")
    assert eve["phone_number"] is None
    page = api.ok("GET", "/clients", params={"limit": 1})
    assert [c["id"] for c in page["items"]] == [bob["id"]]
    rest = api.ok("GET", "/clients", params={"cursor": page["next_cursor"]})
    assert [c["id"] for c in rest["items"]] == [eve["id"]]
    assert rest["next_cursor"] is None


def test_client_validation(api: Api) -> None:
    for body in (
        {"name": "Bob"},
        {"name": "Bob", "email": "nope"},
        {"name": "Bob", "email": "bob@example.com", "phone_number": "0151 123"},
        {"name": "Bob", "email": "bob@example.com", "phone_number": "+0123"},
        {"name": "Bob", "email": "bob@example.com", "phone_number": 4915112345678},
        {"name": "", "email": "bob@example.com"},
    ):
        response = api.client.post("/clients", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    assert api.sql("SELECT count(*) FROM clients")[0][0] == 0


def test_put_replaces_client(api: Api) -> None:
    bob = api.customer(phone_number="+12025550123")
    replaced = api.ok(
        "PUT", f"/clients/{bob['id']}", json={"name": "Robert", "email": "rob@example.com"}
    )
    assert (replaced["name"], replaced["email"], replaced["phone_number"]) == (
        "Robert",
        "rob@example.com",
        None,
    )
    assert api.client.put(f"/clients/{bob['id']}", json={"name": "R"}).status_code == 422
    missing = api.client.put(
        "/clients/00000000-0000-0000-0000-000000000000",
        json={"name": "R", "email": "r@example.com"},
    )
    assert missing.status_code == 404


def test_deleting_a_client_releases_its_holds(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    bob = api.customer()
    eve = api.customer("Eve", "eve@example.com")
    held, booked = api.publish(provider["id"], DAY, DAY + timedelta(minutes=30))["slots"]
    assert api.reserve(bob["id"], held["id"]).status_code == 201
    reservation = api.reserve(bob["id"], booked["id"]).json()
    assert api.confirm(bob["id"], reservation["id"]).status_code == 200

    api.ok("DELETE", f"/clients/{bob['id']}", 204)
    assert api.client.get(f"/clients/{bob['id']}").status_code == 404
    assert api.client.delete(f"/clients/{bob['id']}").status_code == 404
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0
    assert {s["id"] for s in api.slots(provider["id"])} == {held["id"], booked["id"]}
    assert api.sql("SELECT DISTINCT status FROM slots") == [("available",)]
    assert api.reserve(eve["id"], held["id"]).status_code == 201
