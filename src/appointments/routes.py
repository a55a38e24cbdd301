"""The application's routes as FastAPI resolves them.

FastAPI keeps included routers nested (`app.routes` holds one entry per
`include_router`, not the routes inside), so code that inspects routes walks
them through FastAPI's own resolver.
"""

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts


def api_routes(app: FastAPI) -> Iterator[RouteContext]:
    """Every API route with the dependencies of the routers it was included with."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            yield route


def every_route(app: FastAPI) -> Iterator[RouteContext]:
    yield from iter_route_contexts(app.routes)


def is_web_page(route: RouteContext | APIRoute) -> bool:
    """A route of the built-in HTML pages (outside the JSON API and its document)."""
    endpoint = route.endpoint
    return endpoint is not None and endpoint.__module__.startswith("appointments.web.")
