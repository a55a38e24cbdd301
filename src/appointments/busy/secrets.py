"""A calendar's password at rest: a Fernet token under APPOINTMENTS_SECRETS_KEY."""

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from appointments.busy.errors import CalendarNotAllowed
from appointments.busy.models import Calendar
from appointments.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    if settings.secrets_key is None:
        raise CalendarNotAllowed(
            "a calendar password is kept encrypted, and no key is set: set "
            "APPOINTMENTS_SECRETS_KEY (Fernet.generate_key()) to store one"
        )
    try:
        return Fernet(settings.secrets_key.get_secret_value().encode())
    except ValueError as exc:
        raise CalendarNotAllowed("APPOINTMENTS_SECRETS_KEY is not a Fernet key") from exc


def seal(settings: Settings, password: str) -> str:
    return _fernet(settings).encrypt(password.encode()).decode()


def unseal(settings: Settings, token: str) -> str | None:
    """The password, or None when the key has changed since (the sync then fails)."""
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except (InvalidToken, CalendarNotAllowed):
        return None


@dataclass(frozen=True)
class Credentials:
    """What a read or a write of the calendar logs in with: basic auth when it has a
    user name and a password, none otherwise; `problem` says why the stored password
    cannot be used (the attempt then fails with that reason)."""

    auth: tuple[str, str] | None
    problem: str | None = None


def credentials(settings: Settings, calendar: Calendar) -> Credentials:
    if calendar.username is None or calendar.password_secret is None:
        return Credentials(None)
    password = unseal(settings, calendar.password_secret)
    if password is None:
        return Credentials(None, "the stored password cannot be read with APPOINTMENTS_SECRETS_KEY")
    return Credentials((calendar.username, password))
