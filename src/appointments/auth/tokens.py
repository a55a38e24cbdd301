"""Bearer JWTs: verifying what an identity provider (or `appointments token`) signed.

Local development and tests sign with an HS256 secret; production verifies
RS256/ES256 signatures with a public key or the identity provider's JWKS.
"""

import enum
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import jwt
from fastapi.security.utils import get_authorization_scheme_param

from appointments.auth.errors import Unauthorized
from appointments.settings import Settings

# Tolerated clock difference between the token issuer and us.
LEEWAY_SECONDS = 5
_MIN_SECRET_BYTES = 32
# Verified tokens kept, so a client's next requests skip the signature check (an
# HS256 decode costs tens of microseconds, an RS256 one far more). Bounded: when
# full, the oldest half is dropped.
CACHE_SIZE = 10_000
_PLACEHOLDERS = frozenset({"secret", "changeme", "change-me", "dev", "test", "password"})


class Role(enum.StrEnum):
    ADMIN = "admin"
    PROVIDER = "provider"
    CLIENT = "client"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin by name, or the provider / client whose id is `subject`."""

    role: Role
    subject: str


class ConfigurationError(RuntimeError):
    pass


def local_secret(settings: Settings) -> str:
    """The HS256 secret of a local install, created (mode 0600) on first use."""
    path = Path(settings.jwt_secret_file)
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def signing_secret(settings: Settings) -> str | None:
    """The HS256 secret in force, if the service uses one."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.jwt_public_key or settings.jwt_jwks_url:
        return None
    if settings.environment == "local":
        return local_secret(settings)
    return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, read exactly as FastAPI's
    `HTTPBearer` reads it (its own function: the scheme before the first space, any
    case; the rest stripped), so routes, fast paths and pages agree on every form."""
    scheme, token = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        secret = signing_secret(settings)
        if secret is not None:
            if settings.environment == "production" and (
                len(secret.encode()) < _MIN_SECRET_BYTES or secret.lower() in _PLACEHOLDERS
            ):
                raise ConfigurationError(
                    f"APPOINTMENTS_JWT_SECRET must be at least {_MIN_SECRET_BYTES} random bytes "
                    "in production"
                )
            self._key, self._algorithms = secret, ["HS256"]
        elif settings.jwt_public_key:
            self._key, self._algorithms = settings.jwt_public_key, settings.jwt_algorithms
        elif settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            self._algorithms = settings.jwt_algorithms
        else:
            raise ConfigurationError(
                "no token key configured: set APPOINTMENTS_JWT_SECRET, "
                "APPOINTMENTS_JWT_PUBLIC_KEY or APPOINTMENTS_JWT_JWKS_URL"
            )
        if any(alg.lower() == "none" for alg in self._algorithms):
            raise ConfigurationError("unsigned tokens (alg none) are never accepted")
        # token -> (who, its expiry as a Unix time); only tokens that passed every check.
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        """Who the token names, or Unauthorized. A token that verified before is taken
        from the cache until its `exp` (never beyond, leeway or not)."""
        principal, _ = await self.verify_until(token)
        return principal

    async def verify_until(self, token: str) -> tuple[Principal, float]:
        """`verify`, with the token's `exp` (Unix seconds): what the caller may trust
        it for no longer than (a page session signed in with it)."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                return cached
            del self._verified[token]
        checked = await self._check(token)
        if len(self._verified) >= CACHE_SIZE:
            for stale in list(self._verified)[: CACHE_SIZE // 2]:
                del self._verified[stale]
        self._verified[token] = checked
        return checked

    async def _check(self, token: str) -> tuple[Principal, float]:
        key = self._key
        if self._jwks is not None:
            try:
                # PyJWKClient fetches over blocking urllib; keep it off the event loop.
                signing_key = await anyio.to_thread.run_sync(
                    self._jwks.get_signing_key_from_jwt, token
                )
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"token key not usable: {_reason(exc)}") from exc
            key = signing_key.key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "role", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {_reason(exc)}") from exc
        subject, role = claims.get("sub"), claims.get("role")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise Unauthorized("token subject is missing or invalid")
        try:
            principal = Principal(role=Role(str(role)), subject=subject)
        except ValueError:
            raise Unauthorized("token role must be admin, provider or client") from None
        return principal, float(claims["exp"])


def _reason(exc: Exception) -> str:
    # PyJWT's messages name the failed check without echoing the token; keep them short.
    return str(exc).replace('"', "'")[:120] or type(exc).__name__


def mint_token(settings: Settings, role: Role, subject: str, ttl_seconds: int) -> str:
    """Sign a token with the local HS256 secret (what `appointments token` prints)."""
    secret = signing_secret(settings)
    if secret is None:
        raise ConfigurationError(
            "tokens are verified with a public key here; get one from the identity provider"
        )
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
