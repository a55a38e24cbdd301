"""Queries on webhook endpoints and their deliveries."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import RowLock
from appointments.notifications.models import Delivery, DeliveryStatus, WebhookEndpoint
from appointments.pagination import PageRequest
from appointments.scheduling.events import Event


async def get(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    provider_id: uuid.UUID | None,
    lock: RowLock | None = None,
) -> WebhookEndpoint | None:
    """The endpoint; with `provider_id`, only when it is that provider's; with `lock`,
    its row locked so until the transaction ends."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if provider_id is not None:
        query = query.where(WebhookEndpoint.provider_id == provider_id)
    if lock is not None:
        query = lock.on(query)
    return (await session.scalars(query)).one_or_none()


async def page(
    session: AsyncSession, provider_id: uuid.UUID | None, request: PageRequest
) -> Sequence[WebhookEndpoint]:
    """Endpoints by (created_at, id): one provider's, or every one."""
    query = select(WebhookEndpoint)
    if provider_id is not None:
        query = query.where(WebhookEndpoint.provider_id == provider_id)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            WebhookEndpoint.created_at >= at,
            or_(WebhookEndpoint.created_at > at, WebhookEndpoint.id > last_id),
        )
    query = query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return (await session.scalars(query.limit(request.limit + 1))).all()


async def deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    status: DeliveryStatus | None,
    request: PageRequest,
) -> Sequence[tuple[Delivery, str]]:
    """The endpoint's deliveries with their event's type, newest first."""
    query = (
        select(Delivery, Event.type)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.endpoint_id == endpoint_id)
    )
    if status is not None:
        query = query.where(Delivery.status == status)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            Delivery.created_at <= at,
            or_(Delivery.created_at < at, Delivery.id < last_id),
        )
    query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc())
    rows = (await session.execute(query.limit(request.limit + 1))).all()
    return [(row[0], row[1]) for row in rows]


async def retry(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, now: datetime
) -> tuple[Delivery, str] | None:
    """Make the delivery due now (pending again), whatever its state."""
    result = await session.scalars(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.endpoint_id == endpoint_id)
        .values(status=DeliveryStatus.PENDING, next_attempt_at=now, delivered_at=None)
        .returning(Delivery)
        .execution_options(synchronize_session=False)
    )
    delivery = result.one_or_none()
    if delivery is None:
        return None
    event_type = await session.scalar(select(Event.type).where(Event.id == delivery.event_id))
    return delivery, str(event_type)
