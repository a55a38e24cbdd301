from datetime import timedelta

from tests.api import Api
from tests.conftest import START


def test_create_provider_answers_201_with_defaults(api: Api) -> None:
    provider = api.provider("Dr Ada")
    assert provider["name"] == "Dr Ada"
    assert provider["timezone"] == "UTC"
    assert provider["email"] is None
    assert provider["created_at"] == "2027-03-01T08:00:00Z"
    assert api.ok("GET", f"/providers/{provider['id']}") == provider


def test_create_provider_keeps_email_and_zone(api: Api) -> None:
    provider = api.provider("Dr B", email="b@example.com", timezone="Europe/Berlin")
    assert (provider["email"], provider["timezone"]) == ("b@example.com", "Europe/Berlin")


def test_create_provider_rejects_bad_input_with_problem_json(api: Api) -> None:
    for body in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "A", "timezone": "Mars/Olympus"},
        {"name": "A", "email": "not-an-email"},
        {"name": "A", "unexpected": 1},
        {"name": 12},
    ):
        response = api.client.post("/providers", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["status"] == 422
    assert api.ok("GET", "/providers")["items"] == []


def test_malformed_json_is_a_422_problem(api: Api) -> None:
    response = api.client.post(
        "/providers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_unknown_or_malformed_provider_id_is_404(api: Api) -> None:
    for ident in ("00000000-0000-0000-0000-000000000000", "nope", "1"):
        response = api.client.get(f"/providers/{ident}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert api.client.put(f"/providers/{ident}", json={"name": "x"}).status_code == 404
        assert api.client.delete(f"/providers/{ident}").status_code == 404


def test_put_replaces_and_resets_omitted_fields(api: Api, clock: object) -> None:
    provider = api.provider("Dr A", email="a@example.com", timezone="Europe/Berlin")
    clock.advance(minutes=5)  # type: ignore[attr-defined]
    replaced = api.ok("PUT", f"/providers/{provider['id']}", json={"name": "Dr A2"})
    assert replaced["name"] == "Dr A2"
    assert replaced["email"] is None
    assert replaced["timezone"] == "UTC"
    assert replaced["created_at"] == provider["created_at"]
    assert replaced["updated_at"] == "2027-03-01T08:05:00Z"
    bad = api.client.put(f"/providers/{provider['id']}", json={"name": ""})
    assert bad.status_code == 422
    assert api.ok("GET", f"/providers/{provider['id']}")["name"] == "Dr A2"


def test_list_providers_walks_pages_in_creation_order(api: Api, clock: object) -> None:
    created = []
    for i in range(7):
        created.append(api.provider(f"P{i}")["id"])
        if i % 2:
            clock.advance(seconds=1)  # type: ignore[attr-defined]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.ok("GET", "/providers", params=params)
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    rows = api.sql("SELECT id FROM providers ORDER BY created_at, id")
    assert len(seen) == len(set(seen)) == 7
    assert [api.db_id(i) for i in seen] == [row[0] for row in rows]
    assert set(seen) == set(created)


def test_list_rejects_bad_paging(api: Api) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"cursor": "garbage!"}):
        response = api.client.get("/providers", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"


def test_delete_provider_removes_it_and_its_slots(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], START + timedelta(days=2), START + timedelta(days=2, hours=1))
    api.ok("DELETE", f"/providers/{provider['id']}", 204)
    assert api.client.get(f"/providers/{provider['id']}").status_code == 404
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0


def test_delete_provider_with_future_booking_is_409_and_changes_nothing(api: Api) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], START + timedelta(days=2))
    api.slot(provider["id"], START + timedelta(days=3))
    assert api.reserve(customer["id"], slot["id"]).status_code == 201
    response = api.client.delete(f"/providers/{provider['id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "availability_conflict"
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 2
    assert api.live_reservations(slot["id"]) == 1


def test_delete_provider_is_allowed_once_the_hold_ran_out(api: Api, clock: object) -> None:
    provider = api.provider()
    customer = api.customer()
    slot = api.slot(provider["id"], START + timedelta(days=2))
    assert api.reserve(customer["id"], slot["id"]).status_code == 201
    clock.advance(minutes=31)  # type: ignore[attr-defined]
    api.ok("DELETE", f"/providers/{provider['id']}", 204)
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0
