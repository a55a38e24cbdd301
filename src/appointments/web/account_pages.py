"""The front door: sign up as a client, sign in with a token, sign out."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from appointments.auth.errors import Unauthorized
from appointments.auth.policy import enforce
from appointments.auth.tokens import Principal, Role, TokenVerifier
from appointments.clients import service as clients
from appointments.clients.schemas import ClientIn
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.providers import service as providers
from appointments.web.pages import (
    PageRefused,
    PosterDep,
    VisitorDep,
    first_error,
    limit_anonymous_post,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)


def home_of(principal: Principal | None) -> str:
    if principal is None:
        return "/"
    return {Role.CLIENT: "/book", Role.PROVIDER: "/provider", Role.ADMIN: "/manage"}[principal.role]


@router.get("/")
async def home(request: Request, visitor: VisitorDep) -> Response:
    if visitor.principal is not None:
        return redirect(request, visitor, home_of(visitor.principal))
    return render(request, visitor, "home.html")


@router.post("/signup")
async def signup(
    request: Request,
    visitor: PosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """A new client: name and email, then a signed session cookie; only where sign-up
    is open (APPOINTMENTS_PUBLIC_SIGNUP), and at most so often per address."""
    if not settings.signup_is_open():
        raise PageRefused(403, "Sign-up is closed here; ask for a sign-in token instead.")
    await limit_anonymous_post(request, session)
    try:
        data = ClientIn(name=name.strip(), email=email.strip())
    except ValidationError as exc:
        return render(
            request,
            visitor,
            "home.html",
            status=422,
            error=first_error(exc),
            name=name,
            email=email,
        )
    client = await clients.create_client(session, data, clock.now())
    visitor.session.sign_in(Principal(Role.CLIENT, str(client.id)), client.name)
    visitor.session.flash = f"Welcome, {client.name}. Pick a provider to book with."
    return redirect(request, visitor, "/book")


@router.post("/signin")
async def signin(
    request: Request,
    visitor: PosterDep,
    session: SessionDep,
    token: Annotated[str, Form(max_length=8000)] = "",
) -> Response:
    """Sign in with a bearer token (`appointments token ...`, or one from your identity
    provider); the token is checked exactly as the API checks it. At most so many
    attempts per address and minute (guessing tokens is slow work)."""
    await limit_anonymous_post(request, session)
    verifier: TokenVerifier = request.app.state.verifier
    try:
        principal, until = await verifier.verify_until(token.strip())
        name = principal.subject
        if principal.role is Role.CLIENT:
            enforce(principal, "GET", "/clients/{client_id}", client_id=principal.subject)
            name = (await clients.get_client(session, principal.subject)).name
        elif principal.role is Role.PROVIDER:
            path = "/providers/{provider_id}"
            enforce(principal, "PUT", path, provider_id=principal.subject)
            name = (await providers.get_provider(session, principal.subject)).name
    except Unauthorized as exc:
        return render(request, visitor, "home.html", status=401, signin_error=exc.detail)
    except DomainError as exc:
        return render(request, visitor, "home.html", status=exc.status, signin_error=exc.detail)
    # The page session ends when the token does (no 30-day cookie from a 3-second token).
    visitor.session.sign_in(principal, name, until)
    visitor.session.flash = f"Signed in as {name}."
    return redirect(request, visitor, home_of(principal))


@router.post("/signout")
async def signout(request: Request, visitor: PosterDep) -> Response:
    visitor.session.sign_out()
    visitor.session.flash = "Signed out."
    return redirect(request, visitor, "/")
