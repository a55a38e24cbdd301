"""The roll: every standing schedule published through its horizon, day after day.

Run by the in-process roller (every APPOINTMENTS_ROLL_INTERVAL_SECONDS), `appointments
roll` and the Kubernetes CronJob, all at once if need be: each provider is rolled in
its own transaction under its row lock, taken with SKIP LOCKED (a provider another
process is rolling or editing right now is left to it), and a roll only inserts what
is missing (ON CONFLICT on the provider's start), so nothing is ever made twice.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.availability import schedule
from appointments.availability.schedule_models import Schedule
from appointments.background import every
from appointments.clock import Clock
from appointments.db import transaction
from appointments.observability.metrics import ROLLS, SCHEDULE_SLOTS
from appointments.providers.models import Provider
from appointments.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rolled:
    providers: int  # rolled by this run (others were far enough already, or another's)
    created: int


def _behind(published_through: date | None, horizon_days: int, zone: str, now: datetime) -> bool:
    today = now.astimezone(ZoneInfo(zone)).date()
    through = today + timedelta(days=horizon_days)
    return published_through is None or published_through < through


async def _due(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """Providers whose schedule is published short of today's horizon."""
    rows = await session.execute(
        select(
            Schedule.provider_id,
            Schedule.published_through,
            Schedule.horizon_days,
            Provider.timezone,
        ).join(Provider, Provider.id == Schedule.provider_id)
    )
    return [row[0] for row in rows.all() if _behind(row[1], row[2], row[3], now)]


async def roll_all(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> Rolled:
    async with transaction(sessionmaker, writes=False) as session:
        due = await _due(session, now)
    rolled = created = 0
    for provider_id in due:
        async with transaction(sessionmaker, writes=True) as session:
            query = (
                select(Provider)
                .where(Provider.id == provider_id)
                .with_for_update(key_share=True, skip_locked=True)
            )
            provider = (await session.scalars(query)).one_or_none()
            if provider is None:
                continue  # being rolled or edited by another process, or gone
            change = await schedule.roll(session, settings, provider, now)
        if change.published_through is not None:  # else another process rolled it meanwhile
            rolled += 1
            created += change.created
    ROLLS.inc()
    SCHEDULE_SLOTS.labels("published", "roll").inc(created)
    return Rolled(providers=rolled, created=created)


async def run_roller(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
    interval_seconds: float,
) -> None:
    """Roll forever (`background.every`)."""

    async def step() -> None:
        rolled = await roll_all(sessionmaker, settings, clock.now())
        if rolled.created:
            logger.info(
                "rolled %d schedule(s): %d slot(s) published", rolled.providers, rolled.created
            )

    await every(interval_seconds, step, "roll", logger)
