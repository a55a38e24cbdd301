"""The built-in web pages: a booking flow for clients and a page for providers."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from appointments.routes import is_web_page
from appointments.settings import Settings
from appointments.web import (
    account_pages,
    admin_pages,
    calendar_pages,
    client_pages,
    provider_pages,
    schedule_pages,
    type_pages,
    webhook_pages,
)
from appointments.web.pages import HERE, PageRefused, get_visitor, refuse
from appointments.web.session import SessionCodec


def _is_page(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and is_web_page(route)


def install(app: FastAPI, settings: Settings) -> None:
    app.state.session_codec = SessionCodec(settings)
    for router in (
        account_pages.router,
        admin_pages.router,
        client_pages.router,
        provider_pages.router,
        schedule_pages.router,
        calendar_pages.router,
        type_pages.router,
        webhook_pages.router,
    ):
        app.include_router(router)
    # Shipped inside the package: no CDN, no build step.
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        response = refuse(request, await get_visitor(request), exc.status, exc.message)
        response.headers.update(exc.headers)
        return response

    api_validation_handler: Any = app.exception_handlers[RequestValidationError]

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            response: Response = await api_validation_handler(request, exc)
            return response
        assert isinstance(exc, RequestValidationError)
        error = exc.errors()[0]
        field = str(error["loc"][-1]).replace("_", " ")
        message = f"The form was not accepted: {field}: {error['msg']}."
        return refuse(request, await get_visitor(request), 422, message)

    app.add_exception_handler(PageRefused, on_refused)
    app.add_exception_handler(RequestValidationError, on_invalid)
