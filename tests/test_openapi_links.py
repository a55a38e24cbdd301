"""The OpenAPI document's links chain a whole booking flow: followed by hand here,
link by link, from creating a provider to cancelling a rescheduled reservation."""

from typing import Any

from tests.api import Api, Json


def resolve(expression: Any, answer: Json, path_params: dict[str, str]) -> Any:
    """A link's runtime expression (`$response.body#/a/0/b`, `$request.path.x`) or constant."""
    if isinstance(expression, dict):
        return {key: resolve(value, answer, path_params) for key, value in expression.items()}
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    if expression.startswith("$request.path."):
        return path_params[expression.removeprefix("$request.path.")]
    pointer = expression.removeprefix("$response.body#")
    value: Any = answer
    for part in pointer.strip("/").split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


class Walker:
    def __init__(self, api: Api) -> None:
        self.api = api
        document = api.ok("GET", "/openapi.json")
        self.operations = {
            operation["operationId"]: (method.upper(), path, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items()
        }
        self.by_route = {(m, p): op for m, p, op in self.operations.values()}

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: Any,
        status: int,
    ) -> Json:
        answer: Json = self.api.ok(method, path.format(**params), status, json=body)
        return answer

    def follow(
        self,
        source: tuple[str, str],
        status: int,
        answer: Json,
        source_params: dict[str, str],
        target: tuple[str, str],
        expected: int,
        **extra: str,
    ) -> tuple[Json, dict[str, str]]:
        """Take the source's link to `target`; `extra` fills what no link can carry."""
        links = self.by_route[source]["responses"][str(status)]["links"]
        (link,) = [
            link for link in links.values() if self.operations[link["operationId"]][:2] == target
        ]
        params = {
            name: resolve(expr, answer, source_params)
            for name, expr in link.get("parameters", {}).items()
        } | extra
        body = resolve(link.get("requestBody"), answer, source_params)
        return self.call(*target, params, body, expected), params


def test_the_links_walk_from_a_new_provider_to_a_rescheduled_cancelled_booking(
    api: Api,
) -> None:
    walker = Walker(api)
    client = api.customer()
    provider = walker.call("POST", "/providers", {}, {"name": "Dr Link"}, 201)
    provider_params: dict[str, str] = {}

    window, params = walker.follow(
        ("POST", "/providers"),
        201,
        provider,
        provider_params,
        ("POST", "/providers/{provider_id}/availability"),
        201,
    )
    assert len(window["slots"]) == 12
    held, params = walker.follow(
        ("POST", "/providers/{provider_id}/availability"),
        201,
        window,
        params,
        ("POST", "/clients/{client_id}/reserve"),
        201,
        client_id=client["id"],  # the one id a link from a window cannot carry
    )
    assert held["slot_id"] == window["slots"][0]["id"]
    confirmed, params = walker.follow(
        ("POST", "/clients/{client_id}/reserve"),
        201,
        held,
        params,
        ("POST", "/clients/{client_id}/confirm"),
        200,
    )
    assert confirmed["status"] == "confirmed"
    moved, params = walker.follow(
        ("POST", "/clients/{client_id}/confirm"),
        200,
        confirmed,
        params,
        ("POST", "/clients/{client_id}/reservations/{reservation_id}/reschedule"),
        200,
    )
    assert moved["id"] == held["id"]
    cancelled, _ = walker.follow(
        ("POST", "/clients/{client_id}/reservations/{reservation_id}/reschedule"),
        200,
        moved,
        params,
        ("POST", "/providers/{provider_id}/reservations/{reservation_id}/cancel"),
        200,
    )
    assert cancelled["status"] == "cancelled"


def test_the_links_walk_from_a_type_to_a_typed_reserve(api: Api) -> None:
    walker = Walker(api)
    client = api.customer()
    provider = walker.call("POST", "/providers", {}, {"name": "Dr Type"}, 201)
    _, params = walker.follow(
        ("POST", "/providers"),
        201,
        provider,
        {},
        ("POST", "/providers/{provider_id}/availability/weekly"),
        201,
    )
    kind, params = walker.follow(
        ("POST", "/providers"),
        201,
        provider,
        {},
        ("POST", "/providers/{provider_id}/appointment-types"),
        201,
    )
    starts, params = walker.follow(
        ("POST", "/providers/{provider_id}/appointment-types"),
        201,
        kind,
        params,
        ("GET", "/providers/{provider_id}/appointment-types/{type_id}/availability"),
        200,
    )
    assert starts["items"]
    held, _ = walker.follow(
        ("GET", "/providers/{provider_id}/appointment-types/{type_id}/availability"),
        200,
        starts,
        params,
        ("POST", "/clients/{client_id}/reserve"),
        201,
        client_id=client["id"],
    )
    assert held["appointment_type_id"] == kind["id"]
    assert held["start_time"] == starts["items"][0]["start_time"]
