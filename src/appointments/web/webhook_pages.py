"""The provider's webhooks on its page: add one (its secret shown once), ping, delete, and
the recent deliveries of each. Through the same service and URL rules as the API."""

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.auth.tokens import Role
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.notifications.models import Delivery, WebhookEndpoint
from appointments.pagination import PageRequest
from appointments.web.pages import ProviderPosterDep, attempt, first_error, redirect, signed_in
from appointments.webhooks import repository as webhooks
from appointments.webhooks import service
from appointments.webhooks.schemas import WebhookIn

router = APIRouter(include_in_schema=False)

ENDPOINTS_SHOWN = 20
DELIVERIES_SHOWN = 10


async def overview(
    session: AsyncSession, provider_id: uuid.UUID
) -> list[tuple[WebhookEndpoint, Sequence[tuple[Delivery, str]]]]:
    """The provider's endpoints, each with its latest deliveries."""
    endpoints = await webhooks.page(session, provider_id, PageRequest(ENDPOINTS_SHOWN, None))
    latest = PageRequest(DELIVERIES_SHOWN - 1, None)  # the page query reads one extra
    return [
        (endpoint, await webhooks.deliveries(session, endpoint.id, None, latest))
        for endpoint in endpoints[:ENDPOINTS_SHOWN]
    ]


@router.post("/provider/webhooks")
async def add(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    url: Annotated[str, Form(max_length=2048)],
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "POST", "/webhooks")
    try:
        data = WebhookIn(url=url.strip(), description=description.strip() or None)
    except ValidationError as exc:
        visitor.session.flash = f"No webhook was added: {first_error(exc)}."
        return redirect(request, visitor, "/provider")
    outcome = await attempt(
        session, lambda: service.create(session, settings, principal, data, clock.now())
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"No webhook was added: {outcome.detail}."
    else:
        visitor.session.flash = (
            f"Webhook added. Its signing secret, shown only now: {outcome.secret}"
        )
    return redirect(request, visitor, "/provider")


@router.post("/provider/webhooks/{webhook_id}/ping")
async def ping(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    webhook_id: str,
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "POST", "/webhooks/{webhook_id}/ping")
    outcome = await attempt(
        session, lambda: service.ping(session, principal, webhook_id, clock.now())
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was sent: {outcome.detail}."
    else:
        visitor.session.flash = "A ping is on its way; its delivery shows below."
    return redirect(request, visitor, "/provider")


@router.post("/provider/webhooks/{webhook_id}/delete")
async def delete(
    request: Request, visitor: ProviderPosterDep, session: SessionDep, webhook_id: str
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "DELETE", "/webhooks/{webhook_id}")
    outcome = await attempt(session, lambda: service.delete(session, principal, webhook_id))
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was deleted: {outcome.detail}."
    else:
        visitor.session.flash = "The webhook is deleted; nothing more is sent to it."
    return redirect(request, visitor, "/provider")
