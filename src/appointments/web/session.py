"""Browser sessions for the built-in pages: one signed cookie, and a CSRF token per session.

The cookie holds who is signed in, the session's CSRF token and a one-shot
message for the next page. It is signed (itsdangerous, HMAC-SHA1 over a key
derived from the secret), HttpOnly, SameSite=Lax, and Secure in production, so
scripts cannot read it and other sites cannot forge it. Every form carries the
CSRF token and every page POST checks it (synchroniser token), on top of
SameSite and an Origin check.
"""

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from appointments.auth.errors import Forbidden
from appointments.auth.tokens import Principal, Role, signing_secret
from appointments.settings import Settings

COOKIE = "appointments_session"
MAX_AGE_SECONDS = 30 * 24 * 3600


@dataclass
class WebSession:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    role: Role | None = None
    subject: str | None = None
    name: str = ""
    flash: str | None = None
    # Unix seconds after which the sign-in no longer counts: the `exp` of the token it
    # was made with (None: signed up here, the cookie's own lifetime bounds it).
    until: float | None = None

    @property
    def principal(self) -> Principal | None:
        if self.role is None or self.subject is None:
            return None
        return Principal(self.role, self.subject)

    def sign_in(self, principal: Principal, name: str, until: float | None = None) -> None:
        # A fresh CSRF token at every sign-in: a token seen before it is worth nothing.
        self.role, self.subject, self.name = principal.role, principal.subject, name
        self.until = until
        self.csrf = secrets.token_urlsafe(32)

    def sign_out(self) -> None:
        self.role, self.subject, self.name, self.until = None, None, "", None
        self.csrf = secrets.token_urlsafe(32)

    def take_flash(self) -> str | None:
        message, self.flash = self.flash, None
        return message


def cookie_key(settings: Settings) -> str | None:
    """The cookie's signing key: APPOINTMENTS_SESSION_SECRET, else one derived from the
    HS256 JWT secret (HMAC-SHA256 under a label of its own), never that secret itself,
    so a cookie and a token can never be made to stand for each other."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    secret = signing_secret(settings)
    if secret is None:
        return None
    return hmac.new(secret.encode(), b"appointments.web.session-cookie.v1", "sha256").hexdigest()


class SessionCodec:
    def __init__(self, settings: Settings) -> None:
        key = cookie_key(settings)
        # No secret at all (production verifying an outside identity provider's keys,
        # without APPOINTMENTS_SESSION_SECRET): the pages then only trust bearer tokens.
        self.enabled = key is not None
        self._serializer = URLSafeTimedSerializer(
            key or secrets.token_urlsafe(32), salt="appointments.web.session"
        )
        self._secure = settings.environment == "production"

    def load(self, request: Request, now: float) -> WebSession:
        """The request's session at `now` (Unix seconds): signed out once the token it
        was signed in with has expired."""
        raw = request.cookies.get(COOKIE)
        if raw is None or not self.enabled:
            return WebSession()
        try:
            data: dict[str, Any] = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
            role = Role(data["role"]) if data.get("role") else None
            until = data.get("until")
            session = WebSession(
                csrf=str(data["csrf"]),
                role=role,
                subject=data.get("sub"),
                name=str(data.get("name", "")),
                flash=data.get("flash"),
                until=None if until is None else float(until),
            )
        except (BadSignature, KeyError, ValueError, TypeError):
            return WebSession()  # tampered, expired or from an older format: start afresh
        if session.until is not None and now >= session.until:
            session.sign_out()
            session.flash = "Your sign-in has expired; sign in again."
        return session

    def store(self, session: WebSession, request: Request, response: Response, now: float) -> None:
        data = {
            "csrf": session.csrf,
            "role": session.role.value if session.role else None,
            "sub": session.subject,
            "name": session.name,
            "flash": session.flash,
            "until": session.until,
        }
        lifetime = MAX_AGE_SECONDS
        if session.until is not None:
            # The browser drops the cookie when the token would have run out, too.
            lifetime = max(1, min(lifetime, int(session.until - now)))
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(data),
            max_age=lifetime,
            httponly=True,
            samesite="lax",
            secure=self._secure or request.url.scheme == "https",
            path="/",
        )


def check_csrf(request: Request, session: WebSession, token: str) -> None:
    """Refuse a page POST whose form token is not the session's, or that comes from
    another origin (browsers send Origin on every cross-site POST)."""
    if not token or not secrets.compare_digest(token, session.csrf):
        raise Forbidden("the form has expired or did not come from this site; reload the page")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise Forbidden("cross-site form submissions are not accepted")
