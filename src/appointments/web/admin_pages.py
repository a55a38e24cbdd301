"""The admin's page: the providers, and creating one with a sign-in token to hand over."""

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from appointments.auth.tokens import ConfigurationError, Role, mint_token
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.providers import service as providers
from appointments.providers.schemas import ProviderIn
from appointments.web.pages import (
    AdminPosterDep,
    VisitorDep,
    first_error,
    provider_list,
    refuse,
    render,
    signed_in,
)

router = APIRouter(include_in_schema=False)

# Long enough to reach the provider by mail; it only signs in, and the session lasts.
SIGN_IN_TOKEN_SECONDS = 7 * 24 * 3600


async def _page(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    cursor: str | None,
    *,
    status: int = 200,
    **context: object,
) -> Response:
    try:
        listed, more = await provider_list(session, cursor)
    except DomainError as exc:
        return refuse(request, visitor, exc.status, exc.detail)
    return render(
        request,
        visitor,
        "manage.html",
        status=status,
        providers=listed,
        next_cursor=more,
        **context,
    )


@router.get("/manage")
async def manage(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    signed_in(visitor, Role.ADMIN, "GET", "/clients")
    return await _page(request, visitor, session, cursor)


@router.post("/manage/providers")
async def create_provider(
    request: Request,
    visitor: AdminPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    timezone: Annotated[str, Form(max_length=100)] = "UTC",
    email: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Create a provider; the answer shows its sign-in token once (it is not stored)."""
    signed_in(visitor, Role.ADMIN, "POST", "/providers")
    try:
        data = ProviderIn(name=name.strip(), timezone=timezone, email=email.strip() or None)
    except ValidationError as exc:
        return await _page(request, visitor, session, None, status=422, error=first_error(exc))
    provider = await providers.create_provider(session, data, clock.now())
    try:
        token = mint_token(settings, Role.PROVIDER, str(provider.id), SIGN_IN_TOKEN_SECONDS)
    except ConfigurationError:
        token = None  # tokens come from the identity provider in this deployment
    return await _page(request, visitor, session, None, status=201, created=provider, token=token)
