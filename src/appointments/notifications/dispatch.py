"""The dispatcher: turns each new event into its deliveries, once.

One transaction takes a batch of undispatched events (on PostgreSQL with `FOR
UPDATE SKIP LOCKED`, so several processes share the work without waiting on each
other), writes a delivery per matching webhook endpoint, per planned mail and per
calendar of the provider that takes bookings (`busy.writeback`), and
marks the events dispatched. A process that dies mid-way rolls the batch back for
the next one to take.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.busy.models import Calendar, CalendarKind
from appointments.clients.models import Client
from appointments.notifications import mail
from appointments.notifications.metrics import EVENTS
from appointments.notifications.models import Channel, Delivery, DeliveryStatus, WebhookEndpoint
from appointments.providers.models import Provider
from appointments.scheduling.events import Event, EventType
from appointments.scheduling.models import Reservation, ReservationStatus
from appointments.settings import Settings


def _wants(endpoint: WebhookEndpoint, event: Event) -> bool:
    if event.type == EventType.PING:
        return endpoint.id == event.endpoint_id
    return (
        endpoint.enabled
        and endpoint.provider_id in (None, event.provider_id)
        and event.type in endpoint.events
    )


async def dispatch(session: AsyncSession, settings: Settings, now: datetime, limit: int) -> int:
    """Dispatch up to `limit` events, oldest first; return how many."""
    await _backfill(session, now)
    query = (
        select(Event).where(Event.dispatched_at.is_(None)).order_by(Event.occurred_at).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = (await session.scalars(query)).all()
    if not events:
        return 0
    endpoints = await _endpoints_for(session, events)
    calendars = await _calendars_for(session, events)
    clients, providers = await _parties(session, events)
    leads = await _series_leads(session, events)
    rows: list[dict[str, object]] = []
    for event in events:
        EVENTS.labels(type=event.type).inc()
        for endpoint in endpoints:
            if _wants(endpoint, event):
                rows.append(_row(event, now, Channel.WEBHOOK, endpoint_id=endpoint.id))
        if event.type in _WRITTEN and event.reservation_id is not None:
            for calendar_id in calendars.get(event.provider_id, ()):
                rows.append(_row(event, now, Channel.CALENDAR, calendar_id=calendar_id))
        client = clients.get(event.client_id) if event.client_id else None
        provider = providers.get(event.provider_id) if event.provider_id else None
        for planned in mail.plan(event, client, provider, settings, series_lead=event.id in leads):
            rows.append(
                _row(
                    event,
                    planned.due_at,
                    Channel.EMAIL,
                    recipient=planned.recipient,
                    template=planned.template,
                )
            )
    if rows:
        await session.execute(insert(Delivery), rows)
    await session.execute(
        update(Event)
        .where(Event.id.in_([event.id for event in events]))
        .values(dispatched_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(events)


async def _series_leads(session: AsyncSession, events: Sequence[Event]) -> set[uuid.UUID]:
    """The confirmations that tell a whole series: of each series confirmed at one moment,
    the event of its earliest occurrence confirmed then (one statement for the batch)."""
    confirmed = [e for e in events if e.type == EventType.CONFIRMED and e.series_id is not None]
    if not confirmed:
        return set()
    firsts = (
        await session.execute(
            select(
                Reservation.series_id, Reservation.confirmed_at, func.min(Reservation.start_time)
            )
            .where(Reservation.series_id.in_({e.series_id for e in confirmed}))
            .where(Reservation.confirmed_at.is_not(None))
            .group_by(Reservation.series_id, Reservation.confirmed_at)
        )
    ).all()
    first_of = {(series_id, at): start for series_id, at, start in firsts}
    return {e.id for e in confirmed if first_of.get((e.series_id, e.occurred_at)) == e.start_time}


def _row(
    event: Event,
    due_at: datetime,
    channel: Channel,
    *,
    endpoint_id: uuid.UUID | None = None,
    calendar_id: uuid.UUID | None = None,
    recipient: str | None = None,
    template: str | None = None,
) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "event_id": event.id,
        "channel": channel,
        "endpoint_id": endpoint_id,
        "calendar_id": calendar_id,
        "provider_id": event.provider_id,
        "recipient": recipient,
        "template": template,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": due_at,
        "created_at": event.occurred_at,
    }


async def _endpoints_for(
    session: AsyncSession, events: Sequence[Event]
) -> Sequence[WebhookEndpoint]:
    """Endpoints that may want one of these events: global ones, the events' providers'
    own, and the targets of pings."""
    provider_ids = {event.provider_id for event in events if event.provider_id is not None}
    targets = {event.endpoint_id for event in events if event.endpoint_id is not None}
    query = select(WebhookEndpoint).where(
        or_(
            WebhookEndpoint.provider_id.is_(None),
            WebhookEndpoint.provider_id.in_(provider_ids),
            WebhookEndpoint.id.in_(targets),
        )
    )
    return (await session.scalars(query)).all()


# The changes that a booking in the provider's own calendar follows (a hold is never
# written; a confirmed booking is, and its moves and its end).
_WRITTEN = (EventType.CONFIRMED, EventType.RESCHEDULED, EventType.CANCELLED)


async def _backfill(session: AsyncSession, now: datetime) -> None:
    """Plan the writes of the bookings made before a calendar took them: each confirmed
    booking not over yet (a series once), through its latest event."""
    query = select(Calendar.id, Calendar.provider_id).where(Calendar.backfill_due.is_(True))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = (await session.execute(query)).all()
    for calendar_id, provider_id in due:
        latest = (
            select(Event.id)
            .where(Event.reservation_id == Reservation.id)
            .order_by(Event.occurred_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        # A booking with an event not dispatched yet is written through that event.
        undispatched = (
            select(Event.id)
            .where(Event.reservation_id == Reservation.id, Event.dispatched_at.is_(None))
            .exists()
        )
        standing = (
            select(Reservation.series_id, Reservation.id, latest)
            .where(
                Reservation.provider_id == provider_id,
                Reservation.status == ReservationStatus.CONFIRMED,
                Reservation.end_time > now,
                ~undispatched,
            )
            .order_by(Reservation.start_time)
        )
        rows, seen = [], set()
        for series_id, _, event_id in await session.execute(standing):
            if event_id is None or (series_id is not None and series_id in seen):
                continue
            seen.add(series_id)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "event_id": event_id,
                    "channel": Channel.CALENDAR,
                    "calendar_id": calendar_id,
                    "provider_id": provider_id,
                    "status": DeliveryStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        if rows:
            await session.execute(insert(Delivery), rows)
        await session.execute(
            update(Calendar).where(Calendar.id == calendar_id).values(backfill_due=False)
        )


async def _calendars_for(
    session: AsyncSession, events: Sequence[Event]
) -> dict[uuid.UUID | None, list[uuid.UUID]]:
    """The CalDAV calendars that take bookings, of the providers of these events."""
    provider_ids = {e.provider_id for e in events if e.type in _WRITTEN and e.provider_id}
    if not provider_ids:
        return {}
    rows = await session.execute(
        select(Calendar.provider_id, Calendar.id).where(
            Calendar.provider_id.in_(provider_ids),
            Calendar.write_bookings.is_(True),
            Calendar.kind == CalendarKind.CALDAV,
        )
    )
    found: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for provider_id, calendar_id in rows:
        found.setdefault(provider_id, []).append(calendar_id)
    return found


async def _parties(
    session: AsyncSession, events: Sequence[Event]
) -> tuple[dict[uuid.UUID, mail.Party], dict[uuid.UUID, mail.Party]]:
    """Mail addresses of the events' clients and providers (only events that mail)."""
    mailing = [
        e
        for e in events
        if e.type in (EventType.CONFIRMED, EventType.RESCHEDULED, EventType.CANCELLED)
    ]
    client_ids = {e.client_id for e in mailing if e.client_id is not None}
    provider_ids = {e.provider_id for e in mailing if e.provider_id is not None}
    clients: dict[uuid.UUID, mail.Party] = {}
    providers: dict[uuid.UUID, mail.Party] = {}
    if client_ids:
        rows = await session.execute(
            select(Client.id, Client.name, Client.email).where(Client.id.in_(client_ids))
        )
        clients = {row.id: mail.Party(row.name, row.email) for row in rows}
    if provider_ids:
        rows = await session.execute(
            select(Provider.id, Provider.name, Provider.email, Provider.timezone).where(
                Provider.id.in_(provider_ids)
            )
        )
        providers = {row.id: mail.Party(row.name, row.email, row.timezone) for row in rows}
    return clients, providers
