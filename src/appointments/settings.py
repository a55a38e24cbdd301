"""Every setting of the service, read from `APPOINTMENTS_*` environment variables."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPOINTMENTS_", extra="ignore")

    database_url: str = "sqlite:///appointments.db"
    slot_minutes: int = Field(default=15, ge=1, le=24 * 60)
    hold_seconds: int = Field(default=1800, ge=1)
    min_notice_seconds: int = Field(default=86400, ge=0)
    sweep_interval_seconds: float = Field(default=60, ge=0)
    jwt_secret: SecretStr | None = None
    max_holds_per_client: int = Field(default=3, ge=1)
    # `appointments serve` applies migrations first so a fresh checkout just runs.
    migrate_on_start: bool = True
    # Bounded so a flood of connections cannot exhaust PostgreSQL's max_connections.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
