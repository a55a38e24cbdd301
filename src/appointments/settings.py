"""Every setting of the service, read from `APPOINTMENTS_*` environment variables."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPOINTMENTS_", extra="ignore")

    database_url: str = "sqlite:///appointments.db"
    # Optional streaming replica (PostgreSQL) for the listing reads: bookable slots,
    # start times, providers and appointment types. Writes, and reads inside writes,
    # stay on `database_url`. See docs/deploy.md for the staleness this allows.
    database_read_url: str | None = None
    # The database URL points at PgBouncer in transaction pooling: no statement cache,
    # uniquely named statements, and every statement inside a transaction (a server
    # connection is only ours until the transaction ends). docs/deploy.md.
    db_pgbouncer: bool = False
    slot_minutes: int = Field(default=15, ge=1, le=24 * 60)
    hold_seconds: int = Field(default=1800, ge=1)
    min_notice_seconds: int = Field(default=86400, ge=0)
    sweep_interval_seconds: float = Field(default=60, ge=0)
    # How often the in-process roller publishes the days that came within each standing
    # schedule's horizon (0: never; then run `appointments roll` or the CronJob daily).
    roll_interval_seconds: float = Field(default=600, ge=0)
    # `local`: a missing JWT key is generated into `jwt_secret_file` so a first run just
    # works; `production`: a real key (secret, public key or JWKS URL) is required.
    environment: Literal["local", "production"] = "local"
    jwt_secret: SecretStr | None = None
    jwt_secret_file: str = ".appointments-jwt-secret"
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = ["RS256", "ES256"]
    jwt_issuer: str = "appointments"
    jwt_audience: str = "appointments"
    # Signs the web pages' session cookie; unset, the HS256 JWT secret is used (locally
    # the generated one). Production with an outside identity provider sets it, or
    # lets the provider's proxy send bearer tokens to the pages instead.
    session_secret: SecretStr | None = None
    # Anyone may sign up as a client on the pages (`/signup`). Unset: only when
    # `environment` is local (the first-run walkthrough); production opens it on purpose.
    public_signup: bool | None = None
    # Anonymous page posts (sign-up, sign-in) per client address per minute, counted
    # in the database so every process shares the count; past it, 429 + Retry-After.
    page_posts_per_minute: int = Field(default=20, ge=1)
    max_holds_per_client: int = Field(default=3, ge=1)
    # One JSON object per log line (off: Python's plain format, e.g. for local debugging).
    log_json: bool = True
    log_level: str = "INFO"
    # The hot routes (slot listing, start times, reserve, confirm) answered by plain ASGI
    # in front of FastAPI, with the same answers (fast_paths); off: all through FastAPI.
    fast_paths: bool = True
    # Request hygiene.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: Annotated[list[str], NoDecode] = []
    # `appointments serve` applies migrations first so a fresh checkout just runs.
    migrate_on_start: bool = True
    # Bounded so a flood of connections cannot exhaust PostgreSQL's max_connections.
    # Each process keeps one pool per database (`connections`), shared by transactions
    # and statements on their own: up to size + overflow connections to the primary,
    # and as many to the replica when APPOINTMENTS_DATABASE_READ_URL is set.
    # Connections open on demand and stay; overflow ones are closed as soon as they are
    # returned, so under steady load past the pool size every request past it pays a
    # connect (bench.cpu saw 50-180 per 3,000 requests with 10 + 10): no overflow by default.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # Fail fast while the database is away: answer 503 in seconds instead of hanging.
    db_connect_timeout_seconds: float = Field(default=3, gt=0)
    # Ask each idle pooled connection `SELECT 1` before use (one round trip); see
    # connection_pool.py. Off: a connection found dead is replaced on the next request.
    db_pool_pre_ping: bool = False
    db_pool_timeout_seconds: float = Field(default=5, gt=0)
    db_statement_timeout_seconds: float = Field(default=30, gt=0)
    # How long `serve`, `migrate` and `sweeper` wait for the database at start-up.
    db_wait_seconds: float = Field(default=30, ge=0)

    # Notifications: the outbox's delivery worker, webhooks and mail.
    delivery_interval_seconds: float = Field(default=1, ge=0)
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_retry_seconds: Annotated[list[float], NoDecode] = [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]
    # Unset: allowed only when `environment` is local (see webhooks_may_reach_private).
    webhook_allow_private: bool | None = None
    # Fernet key (urlsafe base64 of 32 bytes) for the calendars' passwords at rest;
    # without one a password is refused (`cryptography.fernet.Fernet.generate_key()`).
    secrets_key: SecretStr | None = None
    # How often each connected calendar is read again (and its busy time rewritten
    # when it changed); 0: only on request (`POST .../calendars/{cid}/sync`).
    calendar_sync_seconds: float = Field(default=300, ge=0)
    smtp_url: SecretStr | None = None
    mail_from: str = "appointments <appointments@localhost>"
    mail_dir: str = "mail"
    reminder_seconds: int = Field(default=86400, ge=0)

    @field_validator("jwt_algorithms", "cors_origins", "webhook_retry_seconds", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_seconds")
    @classmethod
    def _delays_not_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays must not be negative")
        return value

    def signup_is_open(self) -> bool:
        if self.public_signup is None:
            return self.environment == "local"
        return self.public_signup

    def webhooks_may_reach_private(self) -> bool:
        if self.webhook_allow_private is None:
            return self.environment == "local"
        return self.webhook_allow_private


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
