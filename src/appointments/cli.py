"""The operator's command line: serve, migrate, expire, roll, sweeper, deliver, token,
check-config, seed-demo, create-provider."""

import asyncio
import contextlib
import json
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from appointments import demo
from appointments import migrate as migrations
from appointments.auth.tokens import ConfigurationError, Role, mint_token
from appointments.availability.schedule_roll import Rolled, roll_all
from appointments.booking.sweeper import run_sweeper, sweep_once
from appointments.clock import SystemClock
from appointments.db import (
    create_engine,
    create_sessionmaker,
    hosts_as_query,
    transaction,
    wait_for_database,
)
from appointments.notifications.worker import Deliverer
from appointments.observability.logging import configure_logging
from appointments.providers import service as providers
from appointments.providers.schemas import ProviderIn
from appointments.settings import get_settings

app = typer.Typer(help="Appointment booking service.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP service (migrating the database first unless told not to)."""
    settings = get_settings()
    asyncio.run(wait_for_database(settings))
    if settings.migrate_on_start:
        migrations.upgrade(settings.database_url)
    if settings.environment == "local":
        typer.echo(
            f"appointments on http://{host}:{port} (Swagger UI at /api-docs); get a token with:"
            "  appointments token --role admin --subject you",
            err=True,
        )
    uvicorn.run(
        "appointments.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        # Logging is configured by the app itself (JSON lines with request ids).
        log_config=None if settings.log_json else uvicorn.config.LOGGING_CONFIG,
        # With JSON logs our middleware writes the access line (route, request id);
        # uvicorn's would be built for every request even with its logger disabled.
        access_log=not settings.log_json,
        # On SIGTERM, stop accepting, let in-flight requests finish (bounded).
        timeout_graceful_shutdown=20,
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply Alembic migrations to the configured database."""
    settings = get_settings()
    asyncio.run(wait_for_database(settings))
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database migrated to {revision}")


@app.command()
def expire() -> None:
    """Persist every hold that has run out, once, and print how many."""

    async def run() -> int:
        engine = create_engine(get_settings())
        try:
            return await sweep_once(create_sessionmaker(engine), SystemClock())
        finally:
            await engine.dispose()

    typer.echo(f"expired {asyncio.run(run())} reservation(s)")


@app.command()
def roll() -> None:
    """Publish every standing schedule through its horizon, once (safe beside any other
    roll: the CronJob's, the service's own), and print what it did."""
    settings = get_settings()

    async def run() -> Rolled:
        engine = create_engine(settings)
        try:
            return await roll_all(create_sessionmaker(engine), settings, SystemClock().now())
        finally:
            await engine.dispose()

    rolled = asyncio.run(run())
    typer.echo(f"rolled {rolled.providers} schedule(s): {rolled.created} slot(s) published")


@app.command()
def sweeper() -> None:
    """Run only the expiry sweeper, every APPOINTMENTS_SWEEP_INTERVAL_SECONDS (default 60)."""
    settings = get_settings()
    interval = settings.sweep_interval_seconds or 60
    if settings.log_json:
        configure_logging(settings.log_level)

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await run_sweeper(create_sessionmaker(engine), SystemClock(), interval)
        finally:
            await engine.dispose()

    typer.echo(f"sweeping every {interval:g}s; Ctrl-C or SIGTERM stops", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command()
def deliver(
    once: Annotated[
        bool, typer.Option(help="One round (dispatch, send what is due), then exit.")
    ] = False,
) -> None:
    """Run only the notification worker: webhooks and mail from the outbox, every
    APPOINTMENTS_DELIVERY_INTERVAL_SECONDS (default 1). Any number may run at once."""
    settings = get_settings()
    interval = settings.delivery_interval_seconds or 1
    if settings.log_json:
        configure_logging(settings.log_level)

    async def run() -> str:
        engine = create_engine(settings)
        deliverer = Deliverer(create_sessionmaker(engine), settings, SystemClock())
        try:
            if once:
                done = await deliverer.run_once()
                return f"dispatched {done.dispatched} event(s), made {done.attempted} attempt(s)"
            await deliverer.run(interval)
            return ""
        finally:
            await deliverer.close()
            await engine.dispose()

    if once:
        typer.echo(asyncio.run(run()))
        return
    typer.echo(f"delivering every {interval:g}s; Ctrl-C or SIGTERM stops", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command("check-config")
def check_config() -> None:
    """Print the effective settings as JSON, secrets masked."""
    settings = get_settings()
    shown = settings.model_dump(mode="json")
    shown["database_url"] = make_url(hosts_as_query(settings.database_url)).render_as_string(
        hide_password=True
    )
    if settings.jwt_secret is not None:
        shown["jwt_secret"] = "***"
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


@app.command("seed-demo")
def seed_demo() -> None:
    """Create a demo provider with a week of weekday availability, and a demo client."""
    settings = get_settings()

    async def run() -> tuple[str, str, int]:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        try:
            return await demo.seed(sessionmaker, settings, SystemClock())
        finally:
            await engine.dispose()

    provider_id, client_id, slots = asyncio.run(run())
    typer.echo(f"provider {provider_id} (Demo Clinic, Europe/Berlin) with {slots} slots")
    typer.echo(f"client   {client_id} (Demo Client)")
    typer.echo(f"as the client: appointments token --role client --subject {client_id}")


@app.command("create-provider")
def create_provider(
    name: Annotated[str, typer.Option(help="The provider's name, as clients see it.")],
    timezone: Annotated[str, typer.Option(help="IANA zone its hours are read in.")] = "UTC",
    email: Annotated[str | None, typer.Option(help="Optional contact address.")] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Sign-in token lifetime, seconds.")] = 7 * 86400,
) -> None:
    """Create a provider; print its id and a token to sign in to the web page with."""
    settings = get_settings()
    try:
        data = ProviderIn(name=name, timezone=timezone, email=email)
    except ValidationError as exc:
        typer.echo(f"error: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from exc

    async def run() -> str:
        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine), writes=True) as session:
                provider = await providers.create_provider(session, data, SystemClock().now())
                return str(provider.id)
        finally:
            await engine.dispose()

    provider_id = asyncio.run(run())
    typer.echo(f"provider {provider_id} ({data.name}, {data.timezone})")
    try:
        sign_in = mint_token(settings, Role.PROVIDER, provider_id, ttl)
    except ConfigurationError:
        return  # tokens come from the identity provider here
    typer.echo(f"sign-in token (paste it at /): {sign_in}")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="admin, provider or client.")],
    subject: Annotated[str, typer.Option(help="The provider or client id, or an admin's name.")],
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a bearer token signed with the local secret (for development and scripts)."""
    try:
        typer.echo(mint_token(get_settings(), role, subject, ttl))
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
