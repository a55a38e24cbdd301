"""The authorization matrix: every route in the OpenAPI document x every role x own/other.

The expectations below are written out by hand, independently of the policy
module; a route missing here fails the suite, so no route ships without a rule.
"""

from datetime import timedelta
from typing import Any

import pytest

from appointments.auth.tokens import Role
from tests.api import Api, Json, bearer, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
OK = "2xx"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
CALLERS = ("admin", "provider_own", "provider_other", "client_own", "client_other")

EVERYONE = dict.fromkeys(CALLERS, OK)
ADMIN_ONLY = {"admin": OK} | dict.fromkeys(CALLERS[1:], 403)
PROVIDER_ITSELF = {"admin": OK, "provider_own": OK} | dict.fromkeys(CALLERS[2:], 403)
CLIENT_ITSELF = {"admin": OK, "client_own": OK} | dict.fromkeys(
    ("provider_own", "provider_other", "client_other"), 404
)
# A provider manages its own webhooks; another's answer 404 like missing ones.
WEBHOOKS = {"admin": OK, "provider_own": OK, "provider_other": OK} | dict.fromkeys(
    ("client_own", "client_other"), 403
)
WEBHOOK_ITSELF = WEBHOOKS | {"provider_other": 404}

EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/providers"): ADMIN_ONLY,
    ("GET", "/providers"): EVERYONE,
    ("GET", "/providers/{provider_id}"): EVERYONE,
    ("PUT", "/providers/{provider_id}"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/availability"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/availability"): EVERYONE,
    ("POST", "/clients"): ADMIN_ONLY,
    ("GET", "/clients"): ADMIN_ONLY,
    ("GET", "/clients/{client_id}"): CLIENT_ITSELF,
    ("PUT", "/clients/{client_id}"): CLIENT_ITSELF,
    ("DELETE", "/clients/{client_id}"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/reserve"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/confirm"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/reservations/{reservation_id}/cancel"): CLIENT_ITSELF,
    ("GET", "/clients/{client_id}/reservations"): CLIENT_ITSELF,
    ("GET", "/clients/{client_id}/reservations.ics"): CLIENT_ITSELF,
    ("POST", "/providers/{provider_id}/reservations/{reservation_id}/cancel"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/reservations"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/reservations.ics"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/availability"): PROVIDER_ITSELF,
    ("PUT", "/providers/{provider_id}/availability"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/availability/weekly"): PROVIDER_ITSELF,
    ("POST", "/admin/expire-reservations"): ADMIN_ONLY,
    ("POST", "/providers/{provider_id}/appointment-types"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/appointment-types"): EVERYONE,
    ("GET", "/providers/{provider_id}/appointment-types/{type_id}"): EVERYONE,
    ("PUT", "/providers/{provider_id}/appointment-types/{type_id}"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/appointment-types/{type_id}"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/appointment-types/{type_id}/availability"): EVERYONE,
    ("POST", "/clients/{client_id}/reservations/{reservation_id}/reschedule"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/series"): CLIENT_ITSELF,
    ("GET", "/clients/{client_id}/series/{series_id}"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/series/{series_id}/confirm"): CLIENT_ITSELF,
    ("POST", "/clients/{client_id}/series/{series_id}/cancel"): CLIENT_ITSELF,
    ("GET", "/providers/{provider_id}/series/{series_id}"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/series/{series_id}/cancel"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/sessions"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/sessions/{session_id}"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/sessions/{session_id}/cancel"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/calendars"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/calendars"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_ITSELF,
    ("PUT", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/calendars/{calendar_id}/sync"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/calendars/{calendar_id}/conflicts"): PROVIDER_ITSELF,
    ("PUT", "/providers/{provider_id}/schedule"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/schedule"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/schedule"): PROVIDER_ITSELF,
    ("PUT", "/providers/{provider_id}/schedule/overrides/{day}"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/schedule/overrides/{day}"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/schedule/overrides"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/time-off"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/time-off"): PROVIDER_ITSELF,
    ("DELETE", "/providers/{provider_id}/time-off/{time_off_id}"): PROVIDER_ITSELF,
    ("POST", "/providers/{provider_id}/reservations/{reservation_id}/reschedule"): (
        PROVIDER_ITSELF
    ),
    ("POST", "/webhooks"): WEBHOOKS,
    ("GET", "/webhooks"): WEBHOOKS,
    ("GET", "/webhooks/{webhook_id}"): WEBHOOK_ITSELF,
    ("PUT", "/webhooks/{webhook_id}"): WEBHOOK_ITSELF,
    ("DELETE", "/webhooks/{webhook_id}"): WEBHOOK_ITSELF,
    ("POST", "/webhooks/{webhook_id}/ping"): WEBHOOK_ITSELF,
    ("GET", "/webhooks/{webhook_id}/deliveries"): WEBHOOK_ITSELF,
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): WEBHOOK_ITSELF,
}
# Variants of one route whose rule depends on the query.
EXTRA_CALLS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("GET", "/providers/{provider_id}/availability", "status=all"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/availability", "status=reserved"): PROVIDER_ITSELF,
    ("GET", "/providers/{provider_id}/availability", "status=confirmed"): PROVIDER_ITSELF,
}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The matrix runs on SQLite only: who may call what is decided before any query,
    and the routes' own tests run on both databases. It is the suite's slowest part
    (a fresh world for every route x caller), so running it twice bought nothing."""
    return sqlite_url


def build_world(api: Api) -> dict[str, Json]:
    """Two providers, two clients; each client holds a slot of the provider not its own."""
    world = {
        "provider_own": api.provider("Own"),
        "provider_other": api.provider("Other"),
        "client_own": api.customer("Own", "own@example.com"),
        "client_other": api.customer("Other", "other@example.com"),
    }
    world["free_slot"] = api.slot(world["provider_own"]["id"], DAY)
    held_slot = api.slot(world["provider_other"]["id"], DAY)
    world["hold"] = api.reserve(world["client_own"]["id"], held_slot["id"]).json()
    own_held = api.slot(world["provider_own"]["id"], DAY + timedelta(hours=1))
    world["own_hold"] = api.reserve(world["client_other"]["id"], own_held["id"]).json()
    world["other_free_slot"] = api.slot(world["provider_other"]["id"], DAY + timedelta(hours=2))
    world["type"] = api.ok(
        "POST",
        f"/providers/{world['provider_own']['id']}/appointment-types",
        201,
        json={"name": "Short", "duration_minutes": 15},
    )
    # A series of the client's with the provider (two weeks), and a week pair to book.
    weekly = [
        api.slot(world["provider_own"]["id"], DAY + timedelta(hours=3, weeks=k)) for k in (0, 1)
    ]
    world["series"] = api.ok(
        "POST",
        f"/clients/{world['client_own']['id']}/series",
        201,
        json={"slot_id": weekly[0]["id"], "repeat": {"count": 2}},
    )
    # A seat of the other client's in a group session of the provider's.
    group = api.ok(
        "POST",
        f"/providers/{world['provider_own']['id']}/appointment-types",
        201,
        json={"name": "Class", "duration_minutes": 15, "capacity": 2},
    )
    class_slot = api.slot(world["provider_own"]["id"], DAY + timedelta(hours=5))
    world["seat"] = api.ok(
        "POST",
        f"/clients/{world['client_other']['id']}/reserve",
        201,
        json={"slot_id": class_slot["id"], "appointment_type_id": group["id"]},
    )
    world["series_slot"] = api.slot(world["provider_other"]["id"], DAY + timedelta(hours=4))
    api.slot(world["provider_other"]["id"], DAY + timedelta(hours=4, weeks=1))
    # The provider's standing week: a schedule, an override, a time off.
    own = world["provider_own"]["id"]
    api.ok("PUT", f"/providers/{own}/schedule", json={"rules": [], "horizon_days": 1})
    api.ok("PUT", f"/providers/{own}/schedule/overrides/{FAR_DAY}", json={"intervals": []})
    world["time_off"] = api.ok(
        "POST",
        f"/providers/{own}/time-off",
        201,
        json={
            "start_time": iso(DAY + timedelta(days=9)),
            "end_time": iso(DAY + timedelta(days=10)),
        },
    )
    world["calendar"] = api.ok(
        "POST", f"/providers/{own}/calendars", 201, json={"kind": "ics", "url": FEED_URL}
    )
    world["webhook"] = api.ok(
        "POST",
        "/webhooks",
        201,
        json={"url": HOOK_URL, "provider_id": world["provider_own"]["id"]},
    )
    return world


def add_delivery(api: Api, world: dict[str, Json]) -> None:
    """A delivery of the webhook: port 9 (discard) refuses at once, so the ping's
    attempt fails fast and leaves one."""
    api.ok("POST", f"/webhooks/{world['webhook']['id']}/ping", 202)
    api.deliver()
    deliveries = api.ok("GET", f"/webhooks/{world['webhook']['id']}/deliveries")
    world["delivery"] = deliveries["items"][0]


HOOK_URL = "http://127.0.0.1:9/hooks"
FAR_DAY = "2027-06-01"
FEED_URL = "http://127.0.0.1:9/calendar.ics"  # refused at once: its reads fail fast


TYPE_BODY = {"name": "Consultation", "duration_minutes": 45, "buffer_after_minutes": 15}


def request_for(method: str, path: str, world: dict[str, Json]) -> tuple[str, Any]:
    reservation = world["own_hold" if path.startswith("/providers") else "hold"]
    delivery = world.get("delivery", {"id": ""})
    url = path.format(
        provider_id=world["provider_own"]["id"],
        client_id=world["client_own"]["id"],
        reservation_id=reservation["id"],
        type_id=world["type"]["id"],
        webhook_id=world["webhook"]["id"],
        delivery_id=delivery["id"],
        series_id=world["series"]["id"],
        session_id=world["seat"]["session_id"],
        day=FAR_DAY,
        time_off_id=world["time_off"]["id"],
        calendar_id=world["calendar"]["id"],
    )
    far = DAY + timedelta(days=5)
    if (method, path) == ("DELETE", "/providers/{provider_id}"):
        url += "?cancel_conflicts=true"
    if path.endswith("/availability") and method in ("DELETE", "PUT"):
        url += f"?from={iso(far)}&to={iso(far + timedelta(hours=2))}"
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/providers"): {"name": "New"},
        ("PUT", "/providers/{provider_id}"): {"name": "Renamed"},
        ("POST", "/providers/{provider_id}/availability"): {
            "start_time": iso(DAY + timedelta(hours=1)),
            "end_time": iso(DAY + timedelta(hours=2)),
        },
        ("POST", "/clients"): {"name": "New", "email": "new@example.com"},
        ("PUT", "/clients/{client_id}"): {"name": "Renamed", "email": "own@example.com"},
        ("POST", "/clients/{client_id}/reserve"): {"slot_id": world["free_slot"]["id"]},
        ("POST", "/clients/{client_id}/confirm"): {"reservation_id": world["hold"]["id"]},
        ("PUT", "/providers/{provider_id}/availability"): {
            "windows": [{"start_time": iso(far), "end_time": iso(far + timedelta(hours=1))}]
        },
        ("POST", "/providers/{provider_id}/appointment-types"): TYPE_BODY,
        ("PUT", "/providers/{provider_id}/appointment-types/{type_id}"): TYPE_BODY,
        ("POST", "/clients/{client_id}/reservations/{reservation_id}/reschedule"): {
            "slot_id": world["other_free_slot"]["id"]
        },
        ("POST", "/providers/{provider_id}/reservations/{reservation_id}/reschedule"): {
            "slot_id": world["free_slot"]["id"]
        },
        ("POST", "/clients/{client_id}/series"): {
            "slot_id": world["series_slot"]["id"],
            "repeat": {"count": 2},
        },
        ("PUT", "/providers/{provider_id}/schedule"): {"rules": [], "horizon_days": 1},
        ("PUT", "/providers/{provider_id}/schedule/overrides/{day}"): {"intervals": []},
        ("POST", "/providers/{provider_id}/time-off"): {
            "start_time": iso(far),
            "end_time": iso(far + timedelta(hours=1)),
        },
        ("POST", "/providers/{provider_id}/calendars"): {"kind": "ics", "url": FEED_URL},
        ("PUT", "/providers/{provider_id}/calendars/{calendar_id}"): {
            "kind": "ics",
            "url": FEED_URL,
        },
        ("POST", "/webhooks"): {"url": HOOK_URL},
        ("PUT", "/webhooks/{webhook_id}"): {"url": HOOK_URL},
        ("POST", "/providers/{provider_id}/availability/weekly"): {
            "start_date": "2027-04-01",
            "end_date": "2027-04-07",
            "rules": [{"weekday": "mon", "start": "09:00", "end": "10:00"}],
        },
    }
    return url, bodies.get((method, path))


def subject_of(caller: str, world: dict[str, Json]) -> tuple[Role, str]:
    if caller == "admin":
        return Role.ADMIN, "root"
    role = Role.PROVIDER if caller.startswith("provider") else Role.CLIENT
    return role, world[caller]["id"]


def call(api: Api, method: str, path: str, query: str, caller: str | None) -> tuple[int, Any]:
    api.reset()
    world = build_world(api)
    if "{delivery_id}" in path:
        add_delivery(api, world)
    url, body = request_for(method, path, world)
    if query:
        url += ("&" if "?" in url else "?") + query
    headers = {"Authorization": ""} if caller is None else bearer(*subject_of(caller, world))
    response = api.client.request(method, url, json=body, headers=headers)
    return response.status_code, response


def expectation_met(expected: Any, status: int) -> bool:
    return 200 <= status < 300 if expected == OK else status == expected


def test_every_route_has_an_expectation(api: Api) -> None:
    document = api.ok("GET", "/openapi.json")
    routes = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert routes - PUBLIC == set(EXPECTED), "a route without an authorization rule"


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [(m, p, "") for m, p in EXPECTED] + list(EXTRA_CALLS),
    ids=lambda value: str(value),
)
def test_authorization_matrix(api: Api, method: str, path: str, query: str) -> None:
    document = api.ok("GET", "/openapi.json")
    declared = set(document["paths"][path][method.lower()]["responses"])
    expected = EXTRA_CALLS.get((method, path, query)) or EXPECTED[(method, path)]
    failures = []
    for caller in (None, *CALLERS):
        want = 401 if caller is None else expected[caller]
        status, response = call(api, method, path, query, caller)
        if not expectation_met(want, status):
            failures.append(f"{caller}: wanted {want}, got {status} {response.text[:200]}")
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json"
            assert str(status) in declared, f"{method} {path} answers undeclared {status}"
    assert not failures, "\n".join(failures)
