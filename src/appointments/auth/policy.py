"""Who may call what: every route's rule, decided here and nowhere else.

- admins may do everything;
- a provider manages only itself and its availability; its slots' booking state
  (`status` other than `available`) is for it alone;
- a client manages only itself, and reserves and confirms only as itself;
- reading providers, bookable slots, appointment types and their start times
  needs any valid token;
- listing or creating clients and providers, and admin operations, are admin-only.

Someone else's *client* (or anything under it) answers 404, so client ids do not
leak; providers are public, so acting on another provider answers 403.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from appointments.auth.errors import Forbidden, Unauthorized
from appointments.auth.tokens import Principal, Role, TokenVerifier
from appointments.errors import NotFound
from appointments.routes import api_routes, is_web_page


@dataclass(frozen=True)
class Rule:
    name: str
    check: Callable[[Principal, Request], None]
    # Statuses the rule itself can answer, so the OpenAPI document can declare them.
    statuses: tuple[int, ...]


def _same_id(left: str, right: str) -> bool:
    try:
        return uuid.UUID(left) == uuid.UUID(right)
    except ValueError:
        return left == right


def _is_provider(principal: Principal, request: Request) -> bool:
    return principal.role is Role.PROVIDER and _same_id(
        principal.subject, request.path_params["provider_id"]
    )


def _anyone(_principal: Principal, _request: Request) -> None:
    return None


def _admin(principal: Principal, _request: Request) -> None:
    if principal.role is not Role.ADMIN:
        raise Forbidden("only an admin may do this")


def _provider_self(principal: Principal, request: Request) -> None:
    if principal.role is not Role.ADMIN and not _is_provider(principal, request):
        raise Forbidden("a provider may manage only itself")


def _slot_listing(principal: Principal, request: Request) -> None:
    # Bookable slots are public to every signed-in caller; which slots are held or
    # confirmed is the provider's business.
    if request.query_params.get("status", "available") in ("reserved", "confirmed", "all"):
        _provider_self(principal, request)


def _client_self(principal: Principal, request: Request) -> None:
    client_id = request.path_params["client_id"]
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.CLIENT and _same_id(principal.subject, client_id):
        return
    raise NotFound(f"client {client_id!r} does not exist")


def _admin_or_provider(principal: Principal, _request: Request) -> None:
    # Which endpoints a provider may touch (its own) is decided by the webhooks service.
    if principal.role is Role.CLIENT:
        raise Forbidden("only an admin or a provider may manage webhooks")


PUBLIC = Rule("public", _anyone, ())
ANY_USER = Rule("any signed-in caller", _anyone, (401,))
ADMIN = Rule("admin only", _admin, (401, 403))
PROVIDER_SELF = Rule("the provider itself, or an admin", _provider_self, (401, 403))
SLOT_LISTING = Rule("bookable: anyone; booking state: the provider", _slot_listing, (401, 403))
CLIENT_SELF = Rule("the client itself, or an admin", _client_self, (401, 404))
WEBHOOK_OWNER = Rule(
    "an admin (every endpoint) or a provider (its own)", _admin_or_provider, (401, 403)
)

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/providers"): ADMIN,
    ("GET", "/providers"): ANY_USER,
    ("GET", "/providers/{provider_id}"): ANY_USER,
    ("PUT", "/providers/{provider_id}"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/availability"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/availability"): SLOT_LISTING,
    ("POST", "/clients"): ADMIN,
    ("GET", "/clients"): ADMIN,
    ("GET", "/clients/{client_id}"): CLIENT_SELF,
    ("PUT", "/clients/{client_id}"): CLIENT_SELF,
    ("DELETE", "/clients/{client_id}"): CLIENT_SELF,
    ("POST", "/clients/{client_id}/reserve"): CLIENT_SELF,
    ("POST", "/clients/{client_id}/confirm"): CLIENT_SELF,
    ("POST", "/clients/{client_id}/reservations/{reservation_id}/cancel"): CLIENT_SELF,
    ("GET", "/clients/{client_id}/reservations"): CLIENT_SELF,
    ("GET", "/clients/{client_id}/reservations.ics"): CLIENT_SELF,
    ("POST", "/providers/{provider_id}/reservations/{reservation_id}/cancel"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/reservations"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/reservations.ics"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/availability"): PROVIDER_SELF,
    ("PUT", "/providers/{provider_id}/availability"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/availability/weekly"): PROVIDER_SELF,
    ("POST", "/admin/expire-reservations"): ADMIN,
    ("POST", "/providers/{provider_id}/appointment-types"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/appointment-types"): ANY_USER,
    ("GET", "/providers/{provider_id}/appointment-types/{type_id}"): ANY_USER,
    ("PUT", "/providers/{provider_id}/appointment-types/{type_id}"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/appointment-types/{type_id}"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/appointment-types/{type_id}/availability"): ANY_USER,
    ("POST", "/clients/{client_id}/reservations/{reservation_id}/reschedule"): CLIENT_SELF,
    ("POST", "/providers/{provider_id}/reservations/{reservation_id}/reschedule"): PROVIDER_SELF,
    ("POST", "/clients/{client_id}/series"): CLIENT_SELF,
    ("GET", "/clients/{client_id}/series/{series_id}"): CLIENT_SELF,
    ("POST", "/clients/{client_id}/series/{series_id}/confirm"): CLIENT_SELF,
    ("POST", "/clients/{client_id}/series/{series_id}/cancel"): CLIENT_SELF,
    ("GET", "/providers/{provider_id}/series/{series_id}"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/series/{series_id}/cancel"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/sessions"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/calendars"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/calendars"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_SELF,
    ("PUT", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/calendars/{calendar_id}"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/calendars/{calendar_id}/sync"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/calendars/{calendar_id}/conflicts"): PROVIDER_SELF,
    ("PUT", "/providers/{provider_id}/schedule"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/schedule"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/schedule"): PROVIDER_SELF,
    ("PUT", "/providers/{provider_id}/schedule/overrides/{day}"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/schedule/overrides/{day}"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/schedule/overrides"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/time-off"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/time-off"): PROVIDER_SELF,
    ("DELETE", "/providers/{provider_id}/time-off/{time_off_id}"): PROVIDER_SELF,
    ("GET", "/providers/{provider_id}/sessions/{session_id}"): PROVIDER_SELF,
    ("POST", "/providers/{provider_id}/sessions/{session_id}/cancel"): PROVIDER_SELF,
    ("POST", "/webhooks"): WEBHOOK_OWNER,
    ("GET", "/webhooks"): WEBHOOK_OWNER,
    ("GET", "/webhooks/{webhook_id}"): WEBHOOK_OWNER,
    ("PUT", "/webhooks/{webhook_id}"): WEBHOOK_OWNER,
    ("DELETE", "/webhooks/{webhook_id}"): WEBHOOK_OWNER,
    ("POST", "/webhooks/{webhook_id}/ping"): WEBHOOK_OWNER,
    ("GET", "/webhooks/{webhook_id}/deliveries"): WEBHOOK_OWNER,
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): WEBHOOK_OWNER,
}

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT with claims `sub`, `role` (admin, provider, client) and `exp`. "
    "Locally: `appointments token --role admin --subject me`.",
)


def rule_for(method: str, path: str) -> Rule:
    return RULES[("GET" if method == "HEAD" else method, path)]


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Authenticate the bearer token, then apply the route's rule."""
    route = request.scope["route"]
    assert isinstance(route, APIRoute)
    rule = rule_for(request.method, route.path_format)
    if credentials is None:
        raise Unauthorized("a bearer token is required", error=None)
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials)
    rule.check(principal, request)
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(authorize)]


def enforce(principal: Principal, method: str, path: str, **path_params: str) -> None:
    """Apply an API route's rule outside that route (the web pages act through the
    same rules as the API calls they stand for)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "path_params": path_params,
        "query_string": b"",
        "headers": [],
    }
    rule_for(method, path).check(principal, Request(scope))


def check_every_route_has_a_rule(app: FastAPI) -> None:
    """Refuse to start when a route has no rule, or a guarded rule is not enforced."""
    for route in api_routes(app):
        path = route.path_format
        if not route.include_in_schema and is_web_page(route):
            continue  # a web page: signs in by cookie and calls `enforce` itself
        for method in route.methods or ():
            key = (method, path)
            if key not in RULES:
                raise RuntimeError(f"no authorization rule for {method} {path}")
            guarded = any(d.call is authorize for d in route.dependant.dependencies)
            if RULES[key] is not PUBLIC and not guarded:
                raise RuntimeError(f"{method} {path} does not enforce its rule")
