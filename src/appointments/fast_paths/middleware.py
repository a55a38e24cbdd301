"""Plain ASGI in front of FastAPI for the hot routes (`routes.HOT`).

FastAPI's per-request work (matching every route, solving dependencies, the
request and response plumbing) cost a listing more CPU than its query did in
PostgreSQL. Here a hot request is matched by one regular expression, parsed by
hand and answered by the same function the route calls; anything else, and any
hot request the fast path does not take as it is, goes on to FastAPI. The routes
stay declared there, so the OpenAPI document is unchanged.

It sits inside the outer middleware (request id, access log and metrics, CORS, the
body size cap) and inside Starlette's error middleware, so an unhandled error is
still a logged 500.
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

from appointments.fast_paths.call import Call, Skip
from appointments.fast_paths.routes import HOT, Handler
from appointments.routes import api_routes

ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


def _pattern(template: str) -> str:
    # Starlette's `{name}` (a str parameter) matches one non-empty path segment.
    return "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"


class FastPaths:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        routes: dict[tuple[str, str | None], APIRoute] = {}
        for context in api_routes(api):
            assert isinstance(context.original_route, APIRoute)
            for method in context.methods or ():
                routes[(method, context.path_format)] = context.original_route
        self.hot: dict[str, list[tuple[re.Pattern[str], APIRoute, Handler]]] = {}
        for method, template, handler in HOT:
            entry = (re.compile(_pattern(template)), routes[(method, template)], handler)
            self.hot.setdefault(method, []).append(entry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for pattern, route, handler in self.hot.get(scope["method"], ()):
                match = pattern.match(scope["path"])
                if match is not None:
                    await self._answer(scope, receive, send, route, handler, match.groupdict())
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: APIRoute,
        handler: Handler,
        path_params: dict[str, str],
    ) -> None:
        call = None
        try:
            call = Call.of(self.api, scope, receive, path_params)
            # For the access log and the metrics, as FastAPI's router would set it.
            scope["route"] = route
            response = await handler(call)
        except Skip:
            scope.pop("route", None)
            await self.app(scope, call.replay() if call else receive, send)
            return
        except Exception as exc:
            handle = self._handler_for(exc)
            if handle is None or (call is not None and call.reading):
                raise  # e.g. the body size cap's refusal, which its middleware answers
            answer = handle(Request(scope, receive), exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        """The app's own exception handler for `exc`, as Starlette looks it up; None
        for the catch-all (Starlette's error middleware logs those and answers 500)."""
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in self.api.exception_handlers:
                return self.api.exception_handlers[kind]
        return None
