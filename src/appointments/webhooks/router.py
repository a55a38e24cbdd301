"""Webhook endpoints over HTTP: CRUD, ping, deliveries and manual retry."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from appointments.auth.policy import CurrentUser
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.notifications.models import Delivery, DeliveryStatus, WebhookEndpoint
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.webhooks import service
from appointments.webhooks.schemas import (
    DeliveryOut,
    DeliveryState,
    PingOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookReplace,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _endpoint_key(endpoint: WebhookEndpoint) -> Keyset:
    return Keyset(at=endpoint.created_at, id=endpoint.id)


def _delivery_key(row: tuple[Delivery, str]) -> Keyset:
    return Keyset(at=row[0].created_at, id=row[0].id)


def _delivery_out(delivery: Delivery, event_type: str) -> DeliveryOut:
    pending = delivery.status == DeliveryStatus.PENDING
    return DeliveryOut.model_validate(
        {
            "id": delivery.id,
            "event_id": delivery.event_id,
            "event_type": event_type,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_error": delivery.last_error,
            "next_attempt_at": delivery.next_attempt_at if pending else None,
            "delivered_at": delivery.delivered_at,
            "created_at": delivery.created_at,
        }
    )


@router.post(
    "", status_code=201, response_model=WebhookCreated, responses=problem_responses(404, 422)
)
async def create_webhook(
    data: WebhookIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: CurrentUser,
) -> WebhookCreated:
    """Add a webhook endpoint. The answer carries its signing `secret`, shown only here."""
    endpoint = await service.create(session, settings, principal, data, clock.now())
    out = WebhookOut.model_validate(endpoint).model_dump()
    return WebhookCreated(**out, secret=endpoint.secret)


@router.get("", response_model=Page[WebhookOut], responses=problem_responses(422))
async def list_webhooks(
    session: SessionDep,
    principal: CurrentUser,
    paging: Annotated[PageRequest, Depends(page_request)],
) -> Page[WebhookOut]:
    """List webhook endpoints, oldest first: every one for an admin, its own for a provider."""
    rows = await service.list_endpoints(session, principal, paging)
    items, cursor = split_page(rows, paging, _endpoint_key)
    return Page[WebhookOut](
        items=[WebhookOut.model_validate(endpoint) for endpoint in items], next_cursor=cursor
    )


@router.get("/{webhook_id}", response_model=WebhookOut, responses=problem_responses(404))
async def get_webhook(
    webhook_id: str, session: SessionDep, principal: CurrentUser
) -> WebhookEndpoint:
    """Get one webhook endpoint (never its secret)."""
    return await service.get(session, principal, webhook_id)


@router.put("/{webhook_id}", response_model=WebhookOut, responses=problem_responses(404, 422))
async def replace_webhook(
    webhook_id: str,
    data: WebhookReplace,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: CurrentUser,
) -> WebhookEndpoint:
    """Replace a webhook endpoint; omitted optional fields take their defaults. The secret stays."""
    return await service.replace(session, settings, principal, webhook_id, data, clock.now())


@router.delete(
    "/{webhook_id}", status_code=204, response_class=Response, responses=problem_responses(404)
)
async def delete_webhook(webhook_id: str, session: SessionDep, principal: CurrentUser) -> Response:
    """Delete a webhook endpoint and its deliveries; nothing more is sent to it."""
    await service.delete(session, principal, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/ping", status_code=202, response_model=PingOut, responses=problem_responses(404)
)
async def ping_webhook(
    webhook_id: str, session: SessionDep, clock: ClockDep, principal: CurrentUser
) -> PingOut:
    """Send a `ping` event to this endpoint (even a disabled one), through the outbox."""
    return PingOut(event_id=await service.ping(session, principal, webhook_id, clock.now()))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut],
    responses=problem_responses(404, 422),
)
async def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    principal: CurrentUser,
    paging: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[
        DeliveryState | None, Query(description="Only deliveries in this state.")
    ] = None,
) -> Page[DeliveryOut]:
    """List the endpoint's deliveries, newest first, with their attempts and last outcome."""
    wanted = None if status is None else DeliveryStatus(status)
    rows = await service.deliveries(session, principal, webhook_id, wanted, paging)
    items, cursor = split_page(rows, paging, _delivery_key)
    return Page[DeliveryOut](
        items=[_delivery_out(delivery, event_type) for delivery, event_type in items],
        next_cursor=cursor,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(404),
)
async def retry_delivery(
    webhook_id: str,
    delivery_id: str,
    session: SessionDep,
    clock: ClockDep,
    principal: CurrentUser,
) -> DeliveryOut:
    """Send the delivery again as soon as a worker is free (it is `pending` again)."""
    delivery, event_type = await service.retry(
        session, principal, webhook_id, delivery_id, clock.now()
    )
    return _delivery_out(delivery, event_type)
