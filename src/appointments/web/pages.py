"""What every page handler shares: who is visiting, rendering, redirects, and
turning a broken booking rule into a message instead of an error page."""

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.auth.errors import Unauthorized
from appointments.auth.policy import enforce
from appointments.auth.tokens import Principal, Role, TokenVerifier, bearer_token
from appointments.booking import cancel
from appointments.booking.repository import Owner
from appointments.clock import Clock
from appointments.errors import DomainError
from appointments.ids import parse_id
from appointments.pagination import Keyset, PageRequest, decode_cursor, split_page
from appointments.providers import service as providers
from appointments.providers.models import Provider
from appointments.ratelimit import service as rate_windows
from appointments.settings import Settings
from appointments.web.session import SessionCodec, WebSession, check_csrf

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
_ZONE_NAMES = frozenset(available_timezones())
TIMEZONES = sorted(_ZONE_NAMES)
TZ_COOKIE = "tz"

T = TypeVar("T")

# Every asset is our own and no script or style is inline, so the policy can be
# strict; no framing (clickjacking on the booking buttons).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Visitor:
    """The browser at the other end: its cookie session, and who it is signed in as."""

    session: WebSession
    principal: Principal | None
    # Signed in by a bearer token (an identity provider's proxy), not by our cookie.
    by_token: bool
    tz_name: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)  # ZoneInfo caches its instances

    def is_(self, role: Role) -> bool:
        return self.principal is not None and self.principal.role is role


def _now() -> float:
    """Unix seconds, as the token verifier reads them (a session signed in with a
    token lasts exactly as long as the API accepts that token)."""
    return time.time()


def _codec(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.session_codec
    return codec


def _viewer_zone(request: Request) -> str:
    """The zone times are shown in: `?tz=`, else the cookie the page script sets from
    the browser, else UTC."""
    cookie = unquote(request.cookies.get(TZ_COOKIE, ""))  # the script URL-encodes it
    for candidate in (request.query_params.get("tz"), cookie):
        if candidate in _ZONE_NAMES:
            return candidate
    return "UTC"


async def get_visitor(request: Request) -> Visitor:
    session = _codec(request).load(request, _now())
    principal, by_token = session.principal, False
    token = bearer_token(request.headers.get("authorization"))
    if token is not None:
        verifier: TokenVerifier = request.app.state.verifier
        try:
            principal, by_token = await verifier.verify(token), True
        except Unauthorized:
            principal = None
    return Visitor(session, principal, by_token, _viewer_zone(request))


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


class PageRefused(Exception):
    """Answered with an HTML error page (see `web.install`), not problem+json."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


async def limit_anonymous_post(request: Request, session: AsyncSession) -> None:
    """Count an anonymous page post (sign-up, sign-in) against its address's minute,
    in the database every process shares; past the limit, the 429 page with
    Retry-After. Counted in its own savepoint-free statement, kept even when the post
    itself is refused (a wrong token still counts)."""
    settings: Settings = request.app.state.settings
    clock: Clock = request.app.state.clock
    address = request.client.host if request.client is not None else "unknown"
    try:
        await rate_windows.hit(
            session,
            f"page-post:{address}",
            clock.now(),
            limit=settings.page_posts_per_minute,
            window=timedelta(minutes=1),
        )
    except rate_windows.TooManyRequests as exc:
        raise PageRefused(429, exc.detail, {"Retry-After": str(exc.retry_after)}) from exc


async def get_poster(
    request: Request, visitor: VisitorDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Visitor:
    """The visitor behind a page POST whose CSRF token checked out."""
    try:
        check_csrf(request, visitor.session, csrf_token)
    except DomainError as exc:
        raise PageRefused(exc.status, exc.detail) from exc
    return visitor


def _require_role(visitor: Visitor, role: Role) -> Principal:
    principal = visitor.principal
    if principal is None or principal.role is not role:
        raise PageRefused(401 if principal is None else 403, f"Sign in as a {role} first.")
    return principal


def _poster_as(role: Role) -> Callable[..., Awaitable[Visitor]]:
    # A dependency, so the CSRF and role checks answer before the form's own fields
    # are validated: a stranger learns nothing from a 422.
    async def poster(visitor: Annotated[Visitor, Depends(get_poster)]) -> Visitor:
        _require_role(visitor, role)
        return visitor

    return poster


PosterDep = Annotated[Visitor, Depends(get_poster)]
ClientPosterDep = Annotated[Visitor, Depends(_poster_as(Role.CLIENT))]
ProviderPosterDep = Annotated[Visitor, Depends(_poster_as(Role.PROVIDER))]
AdminPosterDep = Annotated[Visitor, Depends(_poster_as(Role.ADMIN))]


def signed_in(visitor: Visitor, role: Role, method: str, api_path: str) -> Principal:
    """The signed-in client or provider, allowed by the rule of the API route the
    page stands for (acting as itself: its id fills the route's id parameter)."""
    principal = _require_role(visitor, role)
    enforce(principal, method, api_path, **{f"{role}_id": principal.subject})
    return principal


def subject_id(principal: Principal) -> uuid.UUID:
    """The signed-in client's or provider's own id. A subject that is no UUID (another
    identity provider's `auth0|12345`) names nobody here: the 404 page, as the API
    answers 404 for it."""
    try:
        return parse_id(principal.subject, str(principal.role))
    except DomainError as exc:
        raise PageRefused(exc.status, exc.detail) from exc


def _finish(request: Request, visitor: Visitor, response: Response) -> Response:
    _codec(request).store(visitor.session, request, response, _now())
    # A zone picked on the page sticks, UTC included (a missing cookie would let the
    # page script replace the choice with the browser's zone).
    if request.query_params.get("tz") == visitor.tz_name:
        response.set_cookie(TZ_COOKIE, visitor.tz_name, max_age=365 * 86400, samesite="lax")
    # Pages show live state (holds, countdowns): never from a cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(SECURITY_HEADERS)
    return response


def render(
    request: Request, visitor: Visitor, template: str, *, status: int = 200, **context: Any
) -> Response:
    flash = visitor.session.take_flash()
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": visitor,
            "csrf": visitor.session.csrf,
            "flash": flash,
            "timezones": TIMEZONES,
            "Role": Role,
            "signup_open": request.app.state.settings.signup_is_open(),
            # Names this rendering of the page's forms: their Idempotency-Key.
            "form_id": secrets.token_urlsafe(12),
            **context,
        },
        status_code=status,
    )
    return _finish(request, visitor, response)


def redirect(request: Request, visitor: Visitor, path: str, **query: str) -> Response:
    """303 See Other: after a POST the browser GETs the result (no resubmission)."""
    kept = {k: v for k, v in query.items() if v}
    url = f"{path}?{urlencode(kept)}" if kept else path
    return _finish(request, visitor, RedirectResponse(url, status_code=303))


def refuse(request: Request, visitor: Visitor, status: int, message: str) -> Response:
    return render(request, visitor, "error.html", status=status, message=message)


async def attempt(session: AsyncSession, action: Callable[[], Awaitable[T]]) -> T | DomainError:
    """Run one booking step in a savepoint; a broken rule undoes the step and comes
    back as the error (its message is shown to the visitor), never half-written."""
    try:
        async with session.begin_nested():
            return await action()
    except DomainError as exc:
        return exc


async def cancel_and_tell(
    session: AsyncSession,
    settings: Settings,
    visitor: Visitor,
    owner: Owner,
    reservation_id: str,
    now: datetime,
) -> None:
    """Cancel one of the owner's reservations (client or provider) and leave the
    outcome, in words, for the next page."""
    outcome = await attempt(
        session,
        lambda: cancel.cancel_reservation(
            session, settings, owner, reservation_id, now, by_client=visitor.is_(Role.CLIENT)
        ),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was cancelled: {outcome.detail}."
    else:
        visitor.session.flash = "The booking is cancelled; the slot is free again."


def first_error(exc: ValidationError) -> str:
    """The first thing wrong with a form, in words: "email: value is not a valid ..."."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


async def provider_list(
    session: AsyncSession, cursor: str | None, limit: int = 100
) -> tuple[Sequence[Provider], str | None]:
    """One page of providers, oldest first, and the cursor of the next (the API's
    keyset); a cursor this service did not issue is a ValidationFailed."""
    paging = PageRequest(limit, decode_cursor(cursor) if cursor else None)
    rows = await providers.list_providers(session, paging)
    return split_page(rows, paging, lambda p: Keyset(at=p.created_at, id=p.id))


def _clock(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _when(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def _weekday_clock(moment: datetime, zone: tzinfo) -> str:
    """`Mondays at 10:00`: a weekly series' place in the week."""
    local = moment.astimezone(zone)
    return f"{local:%A}s at {local:%H:%M}"


def day_name(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


templates.env.filters.update(
    clock=_clock, when=_when, weekday_clock=_weekday_clock, day=day_name, iso=_iso, zone=ZoneInfo
)
