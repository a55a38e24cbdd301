"""Recurring series over HTTP: book, read, confirm and cancel a series."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking import series as booking_series
from appointments.booking.repository import Owner
from appointments.booking.router import REPLAY_NOTE
from appointments.booking.schemas import (
    RefusalOut,
    RepeatOut,
    ReservationOut,
    SeriesCancelIn,
    SeriesIn,
    SeriesOut,
)
from appointments.clients import service as clients
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.idempotency.service import IdempotencyKeyHeader, run_once
from appointments.providers import service as providers
from appointments.scheduling.models import SeriesPolicy
from appointments.settings import Settings

client_router = APIRouter(prefix="/clients/{client_id}", tags=["series"])
provider_router = APIRouter(prefix="/providers/{provider_id}", tags=["series"])


def series_out(result: booking_series.SeriesResult, now: datetime) -> SeriesOut:
    series = result.series
    return SeriesOut(
        id=series.id,
        client_id=series.client_id,
        provider_id=series.provider_id,
        appointment_type_id=series.appointment_type_id,
        repeat=RepeatOut(interval_weeks=series.interval_weeks, count=series.count),
        policy=SeriesPolicy(series.policy),
        expires_at=series.expires_at,
        reservations=[ReservationOut.at(r, now) for r in result.reservations],
        skipped=[RefusalOut(start_time=r.start_time, code=r.code) for r in result.skipped],
        kept=[RefusalOut(start_time=r.start_time, code=r.code) for r in result.kept],
    )


@client_router.post(
    "/series",
    status_code=201,
    response_model=SeriesOut,
    responses=problem_responses(404, 409, 422),
    description="Book the same appointment every `repeat.interval_weeks` weeks, "
    "`repeat.count` times, at the first slot's wall-clock time in the provider's zone. "
    "Every occurrence is checked by the rules of a single reserve, in one transaction; "
    "`policy=all` holds every occurrence or none (409 `series_conflict` listing "
    "`conflicts`), `policy=available` holds those that pass and lists the rest in "
    "`skipped` (409 `series_conflict` when none passes). The held occurrences share one "
    "`expires_at` and count as one hold against the hold limit." + REPLAY_NOTE,
)
async def book_series(
    client_id: str,
    data: SeriesIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    return await series_answer(session, clock.now(), settings, client_id, data, idempotency_key)


async def series_answer(
    session: AsyncSession,
    now: datetime,
    settings: Settings,
    client_id: str,
    data: SeriesIn,
    idempotency_key: str | None,
) -> Response:
    """The series' answer from parsed parameters, in the caller's transaction (the
    route's, and the client's pages')."""
    client = await clients.lock_client(session, client_id)
    request = booking_series.SeriesRequest(
        slot_id=data.slot_id,
        appointment_type_id=data.appointment_type_id,
        seats=data.seats,
        interval_weeks=data.repeat.interval_weeks,
        count=data.repeat.count,
        policy=data.policy,
    )

    async def act() -> tuple[int, SeriesOut]:
        result = await booking_series.reserve_series(session, settings, client, request, now)
        return 201, series_out(result, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="held",
        scope_id=client,
        operation="series",
        request=data.model_dump(mode="json", exclude_none=True),
        now=now,
        action=act,
    )


@client_router.get(
    "/series/{series_id}", response_model=SeriesOut, responses=problem_responses(404)
)
async def client_series(
    client_id: str, series_id: str, session: SessionDep, clock: ClockDep
) -> SeriesOut:
    """One of this client's series, with its occurrences."""
    client = await clients.get_client(session, client_id)
    result = await booking_series.get_series(session, Owner(client_id=client.id), series_id)
    return series_out(result, clock.now())


@provider_router.get(
    "/series/{series_id}", response_model=SeriesOut, responses=problem_responses(404)
)
async def provider_series(
    provider_id: str, series_id: str, session: SessionDep, clock: ClockDep
) -> SeriesOut:
    """A series booked with this provider, with its occurrences."""
    provider = await providers.get_provider(session, provider_id)
    result = await booking_series.get_series(session, Owner(provider_id=provider.id), series_id)
    return series_out(result, clock.now())


@client_router.post(
    "/series/{series_id}/confirm",
    response_model=SeriesOut,
    responses=problem_responses(404, 409),
    description="Confirm every held occurrence at once, or none (409 "
    "`reservation_expired` when the series' hold ran out). Confirming again changes nothing.",
)
async def confirm_series(
    client_id: str, series_id: str, session: SessionDep, clock: ClockDep
) -> SeriesOut:
    now = clock.now()
    client = await clients.lock_client(session, client_id)
    result = await booking_series.confirm_series(session, client, series_id, now)
    return series_out(result, now)


CancelBody = Annotated[SeriesCancelIn | None, Body()]


@client_router.post(
    "/series/{series_id}/cancel",
    response_model=SeriesOut,
    responses=problem_responses(404, 422),
    description="Cancel the live occurrences starting at or after `from_start_time` "
    "(default: every one not yet started). Occurrences inside the type's "
    "`change_notice_minutes` stay, listed in `kept`.",
)
async def client_cancel_series(
    client_id: str,
    series_id: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    data: CancelBody = None,
) -> SeriesOut:
    now = clock.now()
    client = await clients.lock_client(session, client_id)
    result = await booking_series.cancel_series(
        session,
        settings,
        Owner(client_id=client),
        series_id,
        data.from_start_time if data else None,
        now,
        by_client=True,
    )
    return series_out(result, now)


@provider_router.post(
    "/series/{series_id}/cancel",
    response_model=SeriesOut,
    responses=problem_responses(404, 422),
    description="Cancel the live occurrences starting at or after `from_start_time` "
    "(default: every one not yet started); each client is told as for any cancel.",
)
async def provider_cancel_series(
    provider_id: str,
    series_id: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    data: CancelBody = None,
) -> SeriesOut:
    now = clock.now()
    provider = await providers.get_provider(session, provider_id)
    result = await booking_series.cancel_series(
        session,
        settings,
        Owner(provider_id=provider.id),
        series_id,
        data.from_start_time if data else None,
        now,
        by_client=False,
    )
    return series_out(result, now)
