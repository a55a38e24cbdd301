"""The hot routes (`routes.HOT`) answered in front of FastAPI.

FastAPI's per-request work (its middleware stack, matching every route, solving
dependencies, the request and response plumbing) cost a listing more CPU than its
query did in PostgreSQL. Here a hot request is matched by one regular expression,
parsed by hand and answered by the same function the route calls; anything else,
and any hot request the fast path does not take as it is, goes to FastAPI. The
routes stay declared there, so the OpenAPI document is unchanged.

`Service.__call__` hands a hot request to `FastPaths` before FastAPI's stack, so
what that stack does for every request is done here too:
- the request observer (request id, access log, metrics) wraps the fast path, and
  is told not to observe again when the request goes on to FastAPI;
- the body size cap: a body over it is left to FastAPI's stack, which refuses it;
- CORS: a request with an `Origin` header, where CORS is on, goes to FastAPI;
- errors: rendered by the app's own exception handlers, an unhandled one as the
  500 Starlette's error middleware would send, then raised for uvicorn to log.
"""

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from appointments.auth.policy import Rule, rule_for
from appointments.fast_paths.call import Call, Skip
from appointments.fast_paths.routes import HOT, Handler, Hot, Reads
from appointments.observability.middleware import RequestObserver
from appointments.routes import api_routes

ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]
_MATCH = "appointments.fast_path"


def _pattern(template: str) -> str:
    # Starlette's `{name}` (a str parameter) matches one non-empty path segment.
    return "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"


def declared(route: APIRoute) -> Reads:
    """What the FastAPI route reads of a request: its query, header and cookie
    parameters and its body, through every dependency (FastAPI's own model of it)."""
    query: set[str] = set()
    headers: set[str] = set()
    cookies: set[str] = set()
    bodies: list[Any] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        query.update(field.alias for field in dependant.query_params)
        headers.update(field.alias.lower() for field in dependant.header_params)
        cookies.update(field.alias for field in dependant.cookie_params)
        bodies.extend(field.field_info.annotation for field in dependant.body_params)
        pending.extend(dependant.dependencies)
    if cookies or len(bodies) > 1:
        raise RuntimeError(f"{route.path}: cookies or several bodies have no fast path")
    return Reads(frozenset(query), frozenset(headers), bodies[0] if bodies else None)


def check_models(hot: Hot, route: APIRoute) -> None:
    """Refuse to start when a hot route's handler and its FastAPI route read different
    parameters: one added on one side only would be ignored, or refused, by the other."""
    theirs = declared(route)
    if hot.reads != theirs:
        raise RuntimeError(
            f"the fast path for {hot.method} {hot.template} reads {hot.reads}, but its "
            f"FastAPI route reads {theirs}: model them alike"
        )


class FastPaths:
    def __init__(self, api: FastAPI, fallback: ASGIApp, *, max_body: int, cors: bool) -> None:
        self.api = api
        self.fallback = fallback  # FastAPI's own handling of the request
        self.max_body = max_body
        self.cors = cors
        routes: dict[tuple[str, str | None], APIRoute] = {}
        for context in api_routes(api):
            assert isinstance(context.original_route, APIRoute)
            for method in context.methods or ():
                routes[(method, context.path_format)] = context.original_route
        self.hot: dict[str, list[tuple[re.Pattern[str], APIRoute, Handler, Rule]]] = {}
        for hot in HOT:
            route = routes[(hot.method, hot.template)]
            check_models(hot, route)
            pattern = re.compile(_pattern(hot.template))
            entry = (pattern, route, hot.handler, rule_for(hot.method, hot.template))
            self.hot.setdefault(hot.method, []).append(entry)
        self.observed = RequestObserver(self._answer)

    def takes(self, scope: Scope) -> bool:
        """Whether the request is for a hot route (noted in the scope for `_answer`)."""
        if scope["type"] != "http":
            return False
        for pattern, route, handler, rule in self.hot.get(scope["method"], ()):
            match = pattern.match(scope["path"])
            if match is not None:
                if self.cors and any(name == b"origin" for name, _ in scope["headers"]):
                    return False
                scope[_MATCH] = (route, handler, rule, match.groupdict())
                return True
        return False

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, handler, rule, path_params = scope.pop(_MATCH)
        scope["app"] = self.api
        call = None
        try:
            call = Call.of(self.api, scope, receive, path_params, self.max_body, rule)
            # For the access log and the metrics, as FastAPI's router would set it.
            scope["route"] = route
            response = await handler(call)
        except Skip:
            scope.pop("route", None)
            await self.fallback(scope, call.replay() if call else receive, send)
            return
        except Exception as exc:
            if call is not None and call.reading:
                raise  # the client's side of the connection failed: nothing to answer
            handle = self._handler_for(exc)
            answer = handle(Request(scope, receive), exc)
            response = await answer if inspect.isawaitable(answer) else answer
            if handle is self.api.exception_handlers.get(Exception):
                # Unhandled: answered 500 (and logged by the handler), then raised, as
                # Starlette's error middleware does.
                await response(scope, receive, send)
                raise
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler:
        """The app's own exception handler for `exc`, as Starlette looks it up."""
        for kind in type(exc).__mro__:
            if kind in self.api.exception_handlers:
                handler: ExceptionHandler = self.api.exception_handlers[kind]
                return handler
        raise exc
