"""The hot routes' fast paths answer exactly as the FastAPI routes do.

Each request is sent to two apps on the same database: the service as it runs (fast
paths on) and the same service with them off (every request through FastAPI). Status,
the headers a client reads and the body must be the same, for good requests and for
every kind of bad one. A spy proves which requests the fast path answered itself.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, Query
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.fast_paths import front, routes
from appointments.fast_paths.call import Skip, times
from appointments.fast_paths.front import check_models, declared
from appointments.main import create_app
from appointments.pagination import PageRequest, page_request
from appointments.routes import api_routes
from appointments.settings import Settings
from appointments.timeparams import AwareQueryTime
from tests.api import Api, bearer, iso
from tests.conftest import START

# What a client can read of an answer (x-request-id differs by design).
HEADERS = ("content-type", "etag", "cache-control", "www-authenticate", "retry-after")
DAY = START + timedelta(days=3)


@pytest.fixture
def through_fastapi(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"fast_paths": False}), clock)
    admin = bearer(Role.ADMIN, "test-admin")
    with TestClient(app, raise_server_exceptions=False, headers=admin) as test_client:
        yield test_client


@pytest.fixture
def answered_fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the route functions the fast paths called."""
    calls: list[str] = []
    for name in (
        "slot_page_answer",
        "start_times_answer",
        "reserve_answer",
        "reserve_autocommit_answer",
        "confirm_answer",
        "confirm_autocommit_answer",
    ):
        real = getattr(routes, name)

        async def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append(_name)
            return await _real(*args)

        monkeypatch.setattr(routes, name, spy)
    return calls


def answer(client: TestClient, method: str, path: str, **kwargs: Any) -> tuple[Any, ...]:
    response = client.request(method, path, **kwargs)
    headers = tuple(response.headers.get(name) for name in HEADERS)
    return response.status_code, headers, response.content


def same(api: Api, other: TestClient, method: str, path: str, **kwargs: Any) -> int:
    fast = answer(api.client, method, path, **kwargs)
    assert fast == answer(other, method, path, **kwargs), (method, path, kwargs)
    status: int = fast[0]
    return status


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    provider = api.provider()
    other = api.provider("Dr Bea")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=3))
    kind = api.appointment_type(provider["id"])
    customer = api.customer()
    return {
        "provider": provider["id"],
        "other": other["id"],
        "type": kind["id"],
        "client": customer["id"],
    }


def listing_cases(world: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    p = world["provider"]
    listing = f"/providers/{p}/availability"
    starts = f"/providers/{p}/appointment-types/{world['type']}/availability"
    as_client = bearer(Role.CLIENT, world["client"])
    as_other = bearer(Role.PROVIDER, world["other"])
    as_provider = bearer(Role.PROVIDER, p)
    token = as_client["Authorization"].removeprefix("Bearer ")
    cases: list[tuple[str, dict[str, Any], int]] = []
    for path in (listing, starts):
        cases += [
            (path, {}, 200),
            (path, {"params": {"limit": "3"}}, 200),
            (path, {"params": {"limit": "0010"}}, 200),
            (path, {"params": {"limit": "0"}}, 422),
            (path, {"params": {"limit": "1001"}}, 422),
            (path, {"params": {"limit": "ten"}}, 422),
            (path, {"params": {"limit": "+5"}}, 200),
            (path, {"params": [("limit", "2"), ("limit", "4")]}, 200),
            (path, {"params": {"cursor": "not-a-cursor"}}, 422),
            (path, {"params": {"cursor": ""}}, 200),
            (path, {"params": {"from": iso(DAY + timedelta(hours=1))}}, 200),
            (path, {"params": {"from": "2027-03-04T09:00:00 01:00"}}, 200),
            (path, {"params": {"from": "2027-03-04T09:00:00"}}, 422),
            (path, {"params": {"from": "yesterday"}}, 422),
            (path, {"params": {"to": iso(DAY + timedelta(hours=1)), "unknown": "x"}}, 200),
            (path, {"headers": {"Authorization": ""}}, 401),
            (path, {"headers": {"Authorization": "Basic abc"}}, 401),
            (path, {"headers": {"Authorization": "Bearer not.a.token"}}, 401),
            (
                path,
                {"headers": {"Authorization": "Bearer not.a.token"}, "params": {"limit": "x"}},
                401,
            ),
            (path, {"headers": as_client}, 200),
            (path, {"headers": {"If-None-Match": '"nope"'}}, 200),
        ]
        # Every form of the header FastAPI's HTTPBearer takes, the fast path takes too.
        for form in ("Bearer  {}", "bearer {}", "BEARER {}", "Bearer {}  ", "Bearer \t{}"):
            cases.append((path, {"headers": {"Authorization": form.format(token)}}, 200))
        cases += [
            (path, {"headers": {"Authorization": "Bearer"}}, 401),
            (path, {"headers": {"Authorization": "Bearer   "}}, 401),
            (path, {"headers": {"Authorization": f"Bearer{token}"}}, 401),
        ]
    cases += [
        (listing, {"params": {"status": "all"}}, 200),
        (listing, {"params": {"status": "all"}, "headers": as_provider}, 200),
        (listing, {"params": {"status": "all"}, "headers": as_other}, 403),
        (listing, {"params": {"status": "everything"}}, 422),
        ("/providers/00000000-0000-4000-8000-000000000000/availability", {}, 404),
        ("/providers/not-an-id/availability", {}, 404),
        (
            f"/providers/{p}/appointment-types/00000000-0000-4000-8000-000000000000/availability",
            {},
            404,
        ),
        (f"/providers/{p}/appointment-types/nope/availability", {}, 404),
    ]
    # A series' start times (`repeat_count`), on the fast path since session 12.
    for params, status in (
        ({"repeat_count": "2"}, 200),
        ({"repeat_count": "52", "repeat_interval_weeks": "4"}, 200),
        ({"repeat_count": "03", "limit": "2"}, 200),
        ({"repeat_interval_weeks": "2"}, 200),
        ({"repeat_count": "1"}, 422),
        ({"repeat_count": "53"}, 422),
        ({"repeat_count": "two"}, 422),
        ({"repeat_count": "+3"}, 200),
        ({"repeat_count": "2", "repeat_interval_weeks": "5"}, 422),
        ({"repeat_interval_weeks": "0"}, 422),
        ([("repeat_count", "2"), ("repeat_count", "60")], 422),
    ):
        cases.append((starts, {"params": params}, status))
    return cases


def test_listings_answer_as_through_fastapi(
    api: Api, through_fastapi: TestClient, world: dict[str, Any], answered_fast: list[str]
) -> None:
    for path, kwargs, expected in listing_cases(world):
        assert same(api, through_fastapi, "GET", path, **kwargs) == expected, (path, kwargs)
    # 304: the tag of a page, sent back.
    for path in (
        f"/providers/{world['provider']}/availability",
        f"/providers/{world['provider']}/appointment-types/{world['type']}/availability",
    ):
        tag = api.client.get(path).headers["etag"]
        assert same(api, through_fastapi, "GET", path, headers={"If-None-Match": tag}) == 304
    # Only the well-formed requests with a usable token reached the route's function
    # from the fast path; the rest went to FastAPI.
    assert "slot_page_answer" in answered_fast
    assert "start_times_answer" in answered_fast


def test_malformed_listing_requests_go_to_fastapi(
    api: Api, world: dict[str, Any], answered_fast: list[str]
) -> None:
    listing = f"/providers/{world['provider']}/availability"
    for params in ({"limit": "0"}, {"cursor": "x"}, {"from": "soon"}, {"status": "x"}):
        assert api.client.get(listing, params=params).status_code == 422
    assert api.client.get(listing, headers={"Authorization": "Basic x"}).status_code == 401
    assert answered_fast == []
    assert api.client.get(listing).status_code == 200
    assert answered_fast == ["slot_page_answer"]


def test_reserve_and_confirm_answer_as_through_fastapi(
    api: Api, through_fastapi: TestClient, world: dict[str, Any], answered_fast: list[str]
) -> None:
    customer = world["client"]
    slots = api.slots(world["provider"], limit=4)
    reserve = f"/clients/{customer}/reserve"
    confirm = f"/clients/{customer}/confirm"
    as_stranger = bearer(Role.CLIENT, "00000000-0000-4000-8000-000000000001")
    refusals: list[tuple[str, dict[str, Any], int]] = [
        (reserve, {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422),
        (reserve, {"content": b"", "headers": {"Content-Type": "application/json"}}, 422),
        (reserve, {"content": b'{"slot_id": "x"}', "headers": {"Content-Type": "text/plain"}}, 422),
        (reserve, {"json": {}}, 422),
        (reserve, {"json": {"slot_id": slots[0]["id"], "extra": 1}}, 422),
        (reserve, {"json": {"slot_id": 5}}, 422),
        (reserve, {"json": {"slot_id": "00000000-0000-4000-8000-000000000000"}}, 404),
        (reserve, {"json": {"slot_id": slots[0]["id"]}, "headers": as_stranger}, 404),
        (reserve, {"json": {"slot_id": slots[0]["id"]}, "headers": {"Authorization": ""}}, 401),
        (reserve, {"json": {"slot_id": "x"}, "headers": {"Idempotency-Key": ""}}, 422),
        (
            "/clients/00000000-0000-4000-8000-000000000000/reserve",
            {"json": {"slot_id": slots[0]["id"]}},
            404,
        ),
        (confirm, {"json": {"reservation_id": "00000000-0000-4000-8000-000000000000"}}, 404),
        (confirm, {"json": {"reservation_id": []}}, 422),
    ]
    for path, kwargs, expected in refusals:
        assert same(api, through_fastapi, "POST", path, **kwargs) == expected, (path, kwargs)
    assert api.live_reservations(slots[0]["id"]) == 0

    # A hold each way, then the same slot again each way (409), then confirms.
    held = []
    for client, slot in ((api.client, slots[0]), (through_fastapi, slots[1])):
        response = client.post(reserve, json={"slot_id": slot["id"]})
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/json"
        held.append(response.json())
    assert held[0].keys() == held[1].keys()
    assert [h["status"] for h in held] == ["held", "held"]
    assert same(api, through_fastapi, "POST", reserve, json={"slot_id": slots[0]["id"]}) == 409
    for client, hold in zip((api.client, through_fastapi), held, strict=True):
        response = client.post(confirm, json={"reservation_id": hold["id"]})
        assert response.status_code == 200, response.text
        assert (response.json()["id"], response.json()["status"]) == (hold["id"], "confirmed")
    # Confirming a confirmed reservation answers it unchanged, both ways alike.
    assert (
        same(api, through_fastapi, "POST", confirm, json={"reservation_id": held[0]["id"]}) == 200
    )
    assert api.live_reservations(slots[0]["id"]) == 1
    # PostgreSQL: each one statement that commits by itself, no session; SQLite: in a transaction.
    autocommit = "_autocommit" if api.dialect == "postgresql" else ""
    assert f"reserve{autocommit}_answer" in answered_fast
    assert f"confirm{autocommit}_answer" in answered_fast


def test_a_body_over_the_cap_is_refused_as_through_fastapi(
    api: Api, through_fastapi: TestClient, world: dict[str, Any], answered_fast: list[str]
) -> None:
    reserve = f"/clients/{world['client']}/reserve"
    big = b'{"slot_id": "' + b"x" * 70_000 + b'"}'
    kinds = {"Content-Type": "application/json"}
    assert same(api, through_fastapi, "POST", reserve, content=big, headers=kinds) == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield big[:40_000]
        yield big[40_000:]

    assert api.client.post(reserve, content=chunks(), headers=kinds).status_code == 413
    assert answered_fast == []


def test_cross_origin_requests_get_the_cors_answer(
    settings: Settings, clock: FrozenClock, world: dict[str, Any], answered_fast: list[str]
) -> None:
    listing = f"/providers/{world['provider']}/availability"
    origin = {"Origin": "https://booking.example"}
    answers = []
    for fast in (True, False):
        changed = {"fast_paths": fast, "cors_origins": ["https://booking.example"]}
        app = create_app(settings.model_copy(update=changed), clock)
        with TestClient(app, headers=bearer(Role.ADMIN, "test-admin")) as client:
            response = client.get(listing, headers=origin)
            assert response.status_code == 200
            answers.append(response.headers.get("access-control-allow-origin"))
            assert client.get(listing).status_code == 200  # no Origin: the fast path's
    assert answers == ["https://booking.example"] * 2
    assert answered_fast == ["slot_page_answer"]


def test_each_request_is_observed_once(
    api: Api, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appointments.access")
    listing = f"/providers/{world['provider']}/availability"
    for params, status in (({}, 200), ({"limit": "0"}, 422)):  # fast, then FastAPI's
        response = api.client.get(listing, params=params, headers={"X-Request-ID": f"r{status}"})
        assert response.status_code == status
        assert response.headers["x-request-id"] == f"r{status}"
        lines = [
            r
            for r in caplog.records
            if r.name == "appointments.access"
            and getattr(r, "fields", {}).get("request_id") == f"r{status}"
        ]
        assert [line.fields["route"] for line in lines] == [  # type: ignore[attr-defined]
            "/providers/{provider_id}/availability"
        ]
        assert [line.fields["status"] for line in lines] == [status]  # type: ignore[attr-defined]


def test_an_unexpected_error_on_a_fast_path_is_a_logged_500(
    api: Api,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(routes, "slot_page_answer", broken)
    response = api.client.get(f"/providers/{world['provider']}/availability")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "text",
    [
        "2027-03-04T09:15:00Z",
        "2027-03-04T09:15:00+01:00",
        "2027-03-04T09:15:00-05:30",
        "2027-03-04T09:15:00.123456Z",
        "2027-03-04T09:15:00 01:00",  # a "+" sent unencoded
        "2027-03-04T09:15Z",
        "2027-03-04T09:15:00",
        "2027-02-30T09:15:00Z",
        "2027-03-04T24:00:00Z",
        "2027-03-04T09:15:60Z",
        "1969-12-31T23:59:59Z",
        "8999-12-31T23:00:00-02:00",
        "9000-01-01T00:00:00Z",
        "2027-03-04T09:15:00+24:00",
        "tomorrow",
    ],
)
def test_query_times_read_as_the_routes_read_them(text: str) -> None:
    try:
        expected: Any = TypeAdapter(AwareQueryTime).validate_python(text)
    except ValidationError:
        expected = Skip
    found: Any
    try:
        (found,) = times({"from": text}, "from")
    except Skip:
        found = Skip
    assert found == expected
    if isinstance(found, datetime):
        assert found.utcoffset() == timedelta(0)


def test_the_fast_paths_read_exactly_what_their_routes_declare(settings: Settings) -> None:
    """Checked at start-up from FastAPI's own model of each route; a parameter added on
    one side only stops the service from starting."""
    app = create_app(settings)
    routed = {
        (c.path_format, m): c.original_route for c in api_routes(app) for m in c.methods or ()
    }
    for hot in routes.HOT:
        route = routed[(hot.template, hot.method)]
        assert isinstance(route, APIRoute)
        assert declared(route) == hot.reads


def test_a_parameter_the_fast_path_does_not_read_stops_the_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing, *others = routes.HOT
    fewer = replace(listing, reads=replace(listing.reads, query=listing.reads.query - {"status"}))
    monkeypatch.setattr(front, "HOT", (fewer, *others))
    with pytest.raises(RuntimeError, match="/providers/{provider_id}/availability reads"):
        create_app(settings)


def test_a_parameter_the_route_does_not_declare_stops_the_start() -> None:
    listing = routes.HOT[0]
    other = FastAPI()

    @other.get(listing.template)
    async def with_one_more(
        provider_id: str,
        extra: str,
        page: Annotated[PageRequest, Depends(page_request)],
        status: str = "available",
        start_from: Annotated[str | None, Query(alias="from")] = None,
        start_before: Annotated[str | None, Query(alias="to")] = None,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> None:
        del provider_id, extra, page, status, start_from, start_before, if_none_match

    (route,) = [r for r in other.routes if isinstance(r, APIRoute)]
    assert declared(route).query == listing.reads.query | {"extra"}
    with pytest.raises(RuntimeError, match="model them alike"):
        check_models(listing, route)


def _schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema itself: `$ref` followed, the non-null branch of an `anyOf`."""
    if "$ref" in schema:
        return _schema(doc, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return _schema(doc, branches[0]) if len(branches) == 1 else schema


def _values(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Values for one parameter, read off its schema: its examples, enum, bounds and
    one past each, lengths at and past the limit, the wrong type, empty."""
    schema = _schema(doc, schema)
    values = ["", "x", "\u00e9", " 1"]
    values += [str(v) for v in schema.get("examples", [])]
    values += [str(v) for v in schema.get("enum", [])]
    if schema.get("type") == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 10)
        values += [str(n) for n in (low - 1, low, high, high + 1)] + ["1.5", "0x10", "+3"]
    if schema.get("format") == "date-time":
        values += ["2027-03-04T09:00:00Z", "2027-03-04T09:00:00+05:30", "2027-03-04T09:00:00"]
        values += ["2027-03-04", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]
    if "maxLength" in schema:
        values += ["a" * schema["maxLength"], "a" * (schema["maxLength"] + 1)]
    return values


def test_every_parameter_of_the_document_answers_alike_both_ways(
    api: Api, through_fastapi: TestClient, world: dict[str, Any]
) -> None:
    """Cases generated from /openapi.json for each hot route: every query and header
    parameter it declares, each with values read off its schema; the bodies' fields
    likewise, with content-type variants. (Writes only with ids that name nothing, so
    both apps see the same database.)"""
    doc = api.client.get("/openapi.json").json()
    ids = {
        "provider_id": world["provider"],
        "type_id": world["type"],
        "client_id": world["client"],
    }
    compared = 0
    for hot in routes.HOT:
        operation = doc["paths"][hot.template][hot.method.lower()]
        path = hot.template.format(**ids)
        for parameter in operation.get("parameters", []):
            where, name = parameter["in"], parameter["name"]
            if where == "path":
                continue
            for value in _values(doc, parameter["schema"]):
                kwargs: dict[str, Any] = {}
                if where == "query":
                    kwargs["params"] = {name: value}
                elif where == "header":
                    kwargs["headers"] = [(name.encode(), value.encode("utf-8"))]
                if hot.method == "POST":
                    kwargs["json"] = {"slot_id": NOBODY, "reservation_id": NOBODY}
                same(api, through_fastapi, hot.method, path, **kwargs)
                compared += 1
        body = operation.get("requestBody")
        if body is None:
            continue
        model = _schema(doc, body["content"]["application/json"]["schema"])
        fields = {name: NOBODY for name in model["required"]}
        for name, field in model["properties"].items():
            for value in _values(doc, field):
                for content_type in (
                    "application/json",
                    "application/json; charset=utf-8",
                    "Application/JSON",
                    "text/plain",
                ):
                    payload = json.dumps(fields | {name: value}).encode()
                    kwargs = {"content": payload, "headers": {"Content-Type": content_type}}
                    same(api, through_fastapi, hot.method, path, **kwargs)
                    compared += 1
        for broken in (b"", b"{", b"[]", b"null", json.dumps(fields | {"extra": 1}).encode()):
            kwargs = {"content": broken, "headers": {"Content-Type": "application/json"}}
            same(api, through_fastapi, hot.method, path, **kwargs)
            compared += 1
    assert compared > 150
    assert api.sql("SELECT count(*) FROM reservations") == [(0,)]


NOBODY = "00000000-0000-4000-8000-000000000000"
