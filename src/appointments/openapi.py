"""The OpenAPI document, corrected to say what the service really answers.

FastAPI documents request validation failures as `HTTPValidationError` JSON;
this service answers them (and every other error) as problem+json instead.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from appointments.auth.policy import rule_for
from appointments.errors import PROBLEM_MEDIA_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Operations that never touch the database, so never answer 503.
_NO_DATABASE_PATHS = frozenset({"/healthz", "/metrics"})


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


P = "/providers/{provider_id}"
C = "/clients/{client_id}"
T = P + "/appointment-types/{type_id}"
_PROVIDER = {"provider_id": "$response.body#/id"}
_CLIENT = {"client_id": "$response.body#/id"}
_SAME_PROVIDER = {"provider_id": "$request.path.provider_id"}
_OF_RESERVATION = {
    "client_id": "$response.body#/client_id",
    "reservation_id": "$response.body#/id",
}
_OF_RESERVATION_BY_PROVIDER = {
    "provider_id": "$response.body#/provider_id",
    "reservation_id": "$response.body#/id",
}
_OF_SERIES = {"client_id": "$response.body#/client_id", "series_id": "$response.body#/id"}
_OF_SERIES_BY_PROVIDER = {
    "provider_id": "$response.body#/provider_id",
    "series_id": "$response.body#/id",
}
_OF_SESSION = {
    "provider_id": "$response.body#/provider_id",
    "session_id": "$response.body#/session_id",
}
_TYPE = {"provider_id": "$response.body#/provider_id", "type_id": "$response.body#/id"}
Link = tuple[str, str, dict[str, str], dict[str, Any] | None]


def _reserve(slot: str, type_id: str | None = None) -> Link:
    # Both fields given: a link's body is merged into a generated one, whose random
    # type id would otherwise turn every linked reserve into a 404.
    return ("POST", C + "/reserve", {}, {"slot_id": slot, "appointment_type_id": type_id})


def _on_reservation() -> list[Link]:
    """What a reservation's id leads to: confirm, cancel and reschedule by either party."""
    return [
        (
            "POST",
            C + "/confirm",
            {"client_id": "$response.body#/client_id"},
            {"reservation_id": "$response.body#/id"},
        ),
        ("POST", C + "/reservations/{reservation_id}/cancel", _OF_RESERVATION, None),
        (
            "POST",
            C + "/reservations/{reservation_id}/reschedule",
            _OF_RESERVATION,
            {"slot_id": "$response.body#/slot_id"},
        ),
        ("POST", P + "/reservations/{reservation_id}/cancel", _OF_RESERVATION_BY_PROVIDER, None),
        (
            "POST",
            P + "/reservations/{reservation_id}/reschedule",
            _OF_RESERVATION_BY_PROVIDER,
            {"slot_id": "$response.body#/slot_id"},
        ),
    ]


# A valid window far ahead: random times almost never fall on the slot grid, so a
# link that publishes one lets a fuzzer's flow go on to real slots.
_FAR_WINDOW = {"start_time": "2099-01-05T09:00:00Z", "end_time": "2099-01-05T12:00:00Z"}
_FAR_WEEK = {
    "start_date": "2099-01-05",
    "end_date": "2099-01-11",
    "rules": [{"weekday": "mon", "start": "09:00", "end": "12:00"}],
}

_WEEKDAY_MORNINGS = {
    "rules": [{"weekday": "mon", "start": "09:00", "end": "12:00"}],
    "horizon_days": 7,
}
_CLOSED: dict[str, Any] = {"intervals": []}
# A feed on the discard port: connected, then read as an error at once (no network
# wait); outside development, where private addresses are refused, a 422 instead.
_A_FEED = {"kind": "ics", "url": "http://127.0.0.1:9/busy.ics"}
_OF_CALENDAR = {"provider_id": "$response.body#/provider_id", "calendar_id": "$response.body#/id"}

# OpenAPI links from the operations that create things to those that use their ids,
# so a fuzzer's stateful phase walks whole booking flows: provider -> availability ->
# slot -> reserve -> reservation -> confirm / cancel / reschedule.
LINKS: dict[tuple[str, str, str], list[Link]] = {
    ("POST", "/providers", "201"): [
        (method, path, _PROVIDER, None)
        for method, path in (
            ("GET", P),
            ("PUT", P),
            ("DELETE", P),
            ("GET", P + "/availability"),
            ("PUT", P + "/availability"),
            ("DELETE", P + "/availability"),
            ("GET", P + "/appointment-types"),
            ("GET", P + "/reservations"),
            ("GET", P + "/reservations.ics"),
        )
    ]
    + [
        ("POST", P + "/availability", _PROVIDER, _FAR_WINDOW),
        ("POST", P + "/availability/weekly", _PROVIDER, _FAR_WEEK),
        ("POST", P + "/appointment-types", _PROVIDER, {"name": "Visit", "duration_minutes": 30}),
        ("PUT", P + "/schedule", _PROVIDER, _WEEKDAY_MORNINGS),
        ("GET", P + "/schedule", _PROVIDER, None),
        ("DELETE", P + "/schedule", _PROVIDER, None),
        ("GET", P + "/schedule/overrides", _PROVIDER, None),
        ("PUT", P + "/schedule/overrides/{day}", _PROVIDER | {"day": "2099-01-05"}, _CLOSED),
        ("POST", P + "/time-off", _PROVIDER, _FAR_WINDOW),
        ("GET", P + "/time-off", _PROVIDER, None),
        ("POST", P + "/calendars", _PROVIDER, _A_FEED),
        ("GET", P + "/calendars", _PROVIDER, None),
    ],
    ("POST", P + "/calendars", "201"): [
        (method, path, _OF_CALENDAR, None)
        for method, path in (
            ("GET", P + "/calendars/{calendar_id}"),
            ("DELETE", P + "/calendars/{calendar_id}"),
            ("POST", P + "/calendars/{calendar_id}/sync"),
            ("GET", P + "/calendars/{calendar_id}/conflicts"),
        )
    ]
    + [("PUT", P + "/calendars/{calendar_id}", _OF_CALENDAR, _A_FEED)],
    ("PUT", P + "/schedule/overrides/{day}", "200"): [
        (
            "DELETE",
            P + "/schedule/overrides/{day}",
            {**_SAME_PROVIDER, "day": "$response.body#/date"},
            None,
        ),
    ],
    ("POST", P + "/time-off", "201"): [
        (
            "DELETE",
            P + "/time-off/{time_off_id}",
            {"provider_id": "$response.body#/provider_id", "time_off_id": "$response.body#/id"},
            None,
        ),
    ],
    ("POST", P + "/availability", "201"): [
        _reserve("$response.body#/slots/0/id"),
        (
            "POST",
            C + "/series",
            {},
            {"slot_id": "$response.body#/slots/0/id", "repeat": {"count": 2}},
        ),
        ("GET", P + "/availability", _SAME_PROVIDER, None),
    ],
    ("POST", P + "/availability/weekly", "201"): [_reserve("$response.body#/slots/0/id")],
    ("GET", P + "/availability", "200"): [_reserve("$response.body#/items/0/id")],
    ("POST", P + "/appointment-types", "201"): [
        (method, path, _TYPE, None)
        for method, path in (("GET", T), ("PUT", T), ("DELETE", T), ("GET", T + "/availability"))
    ],
    ("GET", T + "/availability", "200"): [
        _reserve("$response.body#/items/0/slot_id", "$request.path.type_id")
    ],
    ("POST", "/clients", "201"): [
        (method, path, _CLIENT, None)
        for method, path in (
            ("GET", C),
            ("PUT", C),
            ("DELETE", C),
            ("POST", C + "/reserve"),
            ("GET", C + "/reservations"),
            ("GET", C + "/reservations.ics"),
            ("POST", C + "/series"),
        )
    ],
    ("POST", C + "/reserve", "201"): [
        *_on_reservation(),
        ("GET", P + "/sessions/{session_id}", _OF_SESSION, None),
        ("POST", P + "/sessions/{session_id}/cancel", _OF_SESSION, None),
        ("GET", P + "/sessions", {"provider_id": "$response.body#/provider_id"}, None),
    ],
    ("POST", C + "/series", "201"): [
        ("GET", C + "/series/{series_id}", _OF_SERIES, None),
        ("POST", C + "/series/{series_id}/confirm", _OF_SERIES, None),
        ("POST", C + "/series/{series_id}/cancel", _OF_SERIES, None),
        ("GET", P + "/series/{series_id}", _OF_SERIES_BY_PROVIDER, None),
        ("POST", P + "/series/{series_id}/cancel", _OF_SERIES_BY_PROVIDER, None),
    ],
    ("POST", C + "/confirm", "200"): _on_reservation()[1:],
    ("POST", C + "/reservations/{reservation_id}/reschedule", "200"): _on_reservation(),
}


def _add_links(document: dict[str, Any]) -> None:
    operation_ids = {
        (method.upper(), path): operation["operationId"]
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
    }
    for (method, path, status), links in LINKS.items():
        response = document["paths"][path][method.lower()]["responses"][status]
        named = response.setdefault("links", {})
        for target_method, target_path, parameters, body in links:
            link: dict[str, Any] = {"operationId": operation_ids[(target_method, target_path)]}
            if parameters:
                link["parameters"] = parameters
            if body is not None:
                link["requestBody"] = body
            named[link["operationId"]] = link


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation["responses"]
            for status in rule_for(method.upper(), path).statuses:
                responses.setdefault(str(status), {"description": HTTPStatus(status).phrase})
            if path not in _NO_DATABASE_PATHS:
                responses.setdefault(
                    "503", {"description": "Service Unavailable: the database is unreachable"}
                )
            if "requestBody" in operation:
                # A body that is not JSON at all (e.g. invalid UTF-8) is a 400.
                responses.setdefault("400", {"description": "Bad Request"})
                responses.setdefault("413", {"description": "Content Too Large"})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = _problem_content()
    _add_links(document)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
