"""The application factory: wiring only."""

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from appointments import __version__, connections, web
from appointments.admin.router import router as admin_router
from appointments.appointment_types.router import router as appointment_types_router
from appointments.auth.policy import authorize, check_every_route_has_a_rule
from appointments.auth.tokens import TokenVerifier
from appointments.availability.router import router as availability_router
from appointments.availability.schedule_roll import run_roller
from appointments.availability.schedule_router import router as schedule_router
from appointments.booking.router import client_router as booking_client_router
from appointments.booking.router import provider_router as booking_provider_router
from appointments.booking.series_router import client_router as series_client_router
from appointments.booking.series_router import provider_router as series_provider_router
from appointments.booking.sessions_router import router as sessions_router
from appointments.booking.sweeper import run_sweeper
from appointments.busy import service as busy
from appointments.busy.router import router as calendars_router
from appointments.calendar.router import client_router as calendar_client_router
from appointments.calendar.router import provider_router as calendar_provider_router
from appointments.clients.router import router as clients_router
from appointments.clock import Clock, SystemClock
from appointments.db import create_engine, create_sessionmaker
from appointments.errors import install_error_handlers
from appointments.fast_paths.front import FastPaths
from appointments.health.router import router as health_router
from appointments.hygiene import BodySizeLimit
from appointments.notifications.worker import Deliverer
from appointments.observability.logging import configure_logging
from appointments.observability.middleware import RequestObserver
from appointments.openapi import build_openapi
from appointments.providers.router import router as providers_router
from appointments.settings import Settings, get_settings
from appointments.webhooks.router import router as webhooks_router

DESCRIPTION = """
Providers publish availability, which is cut into slots; clients hold a slot
(the hold expires) and confirm it. Errors are RFC 9457 problem details with a
stable `code`. Lists are keyset-paginated with `limit` and `cursor`.
"""


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    tasks: list[asyncio.Task[None]] = []
    if settings.sweep_interval_seconds > 0:
        tasks.append(
            asyncio.create_task(
                run_sweeper(
                    app.state.sessionmaker, app.state.clock, settings.sweep_interval_seconds
                )
            )
        )
        # The roll runs beside the sweeper: processes that sweep also roll.
        if settings.roll_interval_seconds > 0:
            roller = run_roller(
                app.state.sessionmaker, settings, app.state.clock, settings.roll_interval_seconds
            )
            tasks.append(asyncio.create_task(roller))
    if settings.calendar_sync_seconds > 0:
        reader = busy.run_reader(
            app.state.sessionmaker, settings, app.state.clock, settings.calendar_sync_seconds
        )
        tasks.append(asyncio.create_task(reader))
    deliverer = Deliverer(app.state.sessionmaker, settings, app.state.clock)
    if settings.delivery_interval_seconds > 0:
        tasks.append(asyncio.create_task(deliverer.run(settings.delivery_interval_seconds)))
    try:
        yield
    finally:
        tasks.extend(app.state.calendar_reads)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await deliverer.close()
        await connections.close(app.state.engine)
        await connections.close(app.state.read_engine)
        await app.state.engine.dispose()
        if app.state.read_engine is not app.state.engine:
            await app.state.read_engine.dispose()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.log_json:
        # Here rather than in the lifespan: uvicorn builds the app in each worker
        # before it logs its start, so those lines come out as JSON too.
        configure_logging(settings.log_level)
    app = Service(
        title="appointments",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/api-docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.engine = create_engine(settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    # Listing reads go to the replica when there is one (deps.ReadEngineDep).
    app.state.read_engine = app.state.engine
    if settings.database_read_url:
        app.state.read_engine = create_engine(
            settings, url=settings.database_read_url, name="appointments-read"
        )
    app.state.read_sessionmaker = create_sessionmaker(app.state.read_engine)
    app.state.verifier = TokenVerifier(settings)
    app.state.calendar_reads = set()  # reads started by requests, cancelled at shutdown

    install_error_handlers(app)
    app.include_router(health_router)
    for router in (
        providers_router,
        availability_router,
        schedule_router,
        appointment_types_router,
        clients_router,
        booking_client_router,
        booking_provider_router,
        series_client_router,
        series_provider_router,
        sessions_router,
        calendars_router,
        calendar_client_router,
        calendar_provider_router,
        admin_router,
        webhooks_router,
    ):
        app.include_router(router, dependencies=[Depends(authorize)])
    web.install(app, settings)
    check_every_route_has_a_rule(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: every answer, even a 413 or a CORS refusal, is observed.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestObserver)
    if settings.fast_paths:
        app.fast_paths = FastPaths(
            app,
            functools.partial(FastAPI.__call__, app),
            max_body=settings.max_body_bytes,
            cors=bool(settings.cors_origins),
        )
    return app


class Service(FastAPI):
    """The application: FastAPI, with the hot routes answered in front of it."""

    fast_paths: FastPaths | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            # HEAD is GET without the body (RFC 9110 9.3.2): the same status and
            # headers, Content-Length and ETag included, from the same route.
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        if self.fast_paths is not None and self.fast_paths.takes(scope):
            await self.fast_paths.observed(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _without_body(send: Send) -> Send:
    async def send_head(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_head
