"""Demo data for a newcomer: a provider with a week of slots, and a client."""

from datetime import date, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.availability import service as availability
from appointments.clients import service as clients
from appointments.clients.schemas import ClientIn
from appointments.clock import Clock
from appointments.db import transaction
from appointments.providers import service as providers
from appointments.providers.schemas import ProviderIn
from appointments.settings import Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


async def seed(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
) -> tuple[str, str, int]:
    """Create the demo provider and client in one transaction; returns ids and slot count."""
    now = clock.now()
    # Starts the day after tomorrow, so every slot is past the minimum notice.
    first: date = (now + timedelta(days=2)).date()
    rules: list[tuple[str, time, time | None]] = [(d, time(9), time(17)) for d in WEEKDAYS]
    async with transaction(sessionmaker, writes=True) as session:
        provider = await providers.create_provider(
            session, ProviderIn(name="Demo Clinic", timezone="Europe/Berlin"), now
        )
        client = await clients.create_client(
            session, ClientIn(name="Demo Client", email="demo@example.com"), now
        )
        _, slots = await availability.publish_weekly(
            session, settings, str(provider.id), rules, first, first + timedelta(days=6)
        )
    return str(provider.id), str(client.id), len(slots)
