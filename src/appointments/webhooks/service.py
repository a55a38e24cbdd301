"""Webhook endpoints: who may manage which, the URL rule, pings, deliveries and retries.

An admin manages every endpoint; a provider only its own (anyone else's answers
404, like a missing one). Secrets are made here and returned once, at creation.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from appointments import addresses
from appointments.addresses import AddressNotAllowed
from appointments.auth.errors import Forbidden
from appointments.auth.tokens import Principal, Role
from appointments.db import RowLock
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.notifications.models import Delivery, DeliveryStatus, WebhookEndpoint
from appointments.notifications.signing import new_secret
from appointments.pagination import PageRequest
from appointments.providers import repository as providers
from appointments.scheduling import outbox
from appointments.scheduling.events import SUBSCRIBABLE
from appointments.settings import Settings
from appointments.webhooks import repository
from appointments.webhooks.errors import WebhookUrlNotAllowed
from appointments.webhooks.schemas import WebhookIn, WebhookReplace


def _scope(principal: Principal) -> uuid.UUID | None:
    """The provider whose endpoints the caller may see; None for an admin (every one)."""
    if principal.role is Role.ADMIN:
        return None
    if principal.role is Role.PROVIDER:
        return parse_id(principal.subject, "provider")
    raise Forbidden("only an admin or a provider may manage webhooks")


async def check_url(settings: Settings, url: str) -> None:
    try:
        await addresses.check(url, private_allowed=settings.webhooks_may_reach_private())
    except AddressNotAllowed as exc:
        raise WebhookUrlNotAllowed(f"{exc}; webhooks go to public addresses only") from None


def _subscribed(data: WebhookIn) -> list[str]:
    return [str(kind) for kind in (data.events or SUBSCRIBABLE)]


async def _owner(
    session: AsyncSession, principal: Principal, given: str | None
) -> uuid.UUID | None:
    """The endpoint's provider: a provider's own id always; an admin's choice (null: all)."""
    scope = _scope(principal)
    if scope is not None:
        if given is not None and parse_id(given, "provider") != scope:
            raise Forbidden("a provider may add webhooks for its own bookings only")
        return scope
    if given is None:
        return None
    provider_id = parse_id(given, "provider")
    # Kept until the end: the endpoint refers to it (a deletion racing us waits).
    if await providers.get(session, provider_id, lock=RowLock.KEEP) is None:
        raise NotFound(f"provider {given!r} does not exist")
    return provider_id


async def create(
    session: AsyncSession, settings: Settings, principal: Principal, data: WebhookIn, now: datetime
) -> WebhookEndpoint:
    provider_id = await _owner(session, principal, data.provider_id)
    await check_url(settings, data.url)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        url=data.url,
        events=_subscribed(data),
        provider_id=provider_id,
        description=data.description,
        enabled=True,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get(
    session: AsyncSession, principal: Principal, endpoint_id: str, lock: RowLock | None = None
) -> WebhookEndpoint:
    """The caller's endpoint or NotFound, its row locked as `lock` says."""
    endpoint_uuid = parse_id(endpoint_id, "webhook")
    found = await repository.get(session, endpoint_uuid, _scope(principal), lock)
    if found is None:
        raise NotFound(f"webhook {endpoint_id!r} does not exist")
    return found


async def list_endpoints(
    session: AsyncSession, principal: Principal, request: PageRequest
) -> Sequence[WebhookEndpoint]:
    return await repository.page(session, _scope(principal), request)


async def replace(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    endpoint_id: str,
    data: WebhookReplace,
    now: datetime,
) -> WebhookEndpoint:
    endpoint = await get(session, principal, endpoint_id, RowLock.EDIT)
    provider_id = await _owner(session, principal, data.provider_id)
    await check_url(settings, data.url)
    endpoint.url = data.url
    endpoint.events = _subscribed(data)
    endpoint.provider_id = provider_id
    endpoint.description = data.description
    endpoint.enabled = data.enabled
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    """Delete the endpoint with its deliveries (pending ones are never sent)."""
    endpoint = await get(session, principal, endpoint_id, RowLock.EDIT)
    await session.delete(endpoint)
    await session.flush()


async def ping(
    session: AsyncSession, principal: Principal, endpoint_id: str, now: datetime
) -> uuid.UUID:
    endpoint = await get(session, principal, endpoint_id, RowLock.KEEP)
    return await outbox.record_ping(session, endpoint.id, endpoint.provider_id, now)


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: str,
    status: DeliveryStatus | None,
    request: PageRequest,
) -> Sequence[tuple[Delivery, str]]:
    endpoint = await get(session, principal, endpoint_id)
    return await repository.deliveries(session, endpoint.id, status, request)


async def retry(
    session: AsyncSession, principal: Principal, endpoint_id: str, delivery_id: str, now: datetime
) -> tuple[Delivery, str]:
    endpoint = await get(session, principal, endpoint_id, RowLock.KEEP)
    found = await repository.retry(session, endpoint.id, parse_id(delivery_id, "delivery"), now)
    if found is None:
        raise NotFound(f"delivery {delivery_id!r} does not exist")
    return found
