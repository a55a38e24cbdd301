"""The operator's command line: `appointments serve | migrate | expire | token`."""

import asyncio
from typing import Annotated

import typer
import uvicorn

from appointments import migrate as migrations
from appointments.auth.tokens import ConfigurationError, Role, mint_token
from appointments.booking.sweeper import sweep_once
from appointments.clock import SystemClock
from appointments.db import create_engine, create_sessionmaker
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
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply Alembic migrations to the configured database."""
    migrations.upgrade(get_settings().database_url, revision)
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
