"""Mail through the outbox: which messages an event causes, how they read, how they leave.

Messages are planned when an event is dispatched (so each is a delivery with its own
retries) and composed when sent. With no SMTP URL they are written as `.eml` files,
so a first local run shows what would have been sent.
"""

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import aiosmtplib
from jinja2 import Environment, PackageLoader, select_autoescape

from appointments.ics import Occurrence, Weekly, booking_uid, invite, series_invite, series_uid
from appointments.scheduling.events import Event, EventType
from appointments.settings import Settings

_templates = Environment(
    loader=PackageLoader("appointments.notifications", "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Planned:
    recipient: str
    template: str
    due_at: datetime


@dataclass(frozen=True)
class Party:
    name: str
    email: str | None
    timezone: str = "UTC"


def plan(
    event: Event,
    client: Party | None,
    provider: Party | None,
    settings: Settings,
    *,
    series_lead: bool = False,
) -> list[Planned]:
    """The mails an event causes. Holds and their expiry tell nobody by mail: only
    bookings (confirmed, or cancelled after being confirmed) do. A confirmed series is
    told once, by its first occurrence's event (`series_lead`): one message, one invite
    for every week; each occurrence keeps its own reminder."""
    now = event.occurred_at
    mails: list[Planned] = []
    client_email = client.email if client is not None else None
    provider_email = provider.email if provider is not None else None
    confirmed = event.status == "confirmed"
    if event.type == EventType.CONFIRMED or (event.type == EventType.RESCHEDULED and confirmed):
        kind = "confirmed" if event.type == EventType.CONFIRMED else "rescheduled"
        told = True
        if kind == "confirmed" and event.series_id is not None:
            kind, told = "series_confirmed", series_lead
        if client_email:
            if told:
                mails.append(Planned(client_email, kind, now))
            reminder = _reminder_due(event, settings)
            if reminder is not None:
                mails.append(Planned(client_email, "reminder", reminder))
        if provider_email and told:
            mails.append(Planned(provider_email, f"provider_{kind}", now))
    elif event.type == EventType.CANCELLED and event.confirmed_at is not None:
        if client_email:
            mails.append(Planned(client_email, "cancelled", now))
        if provider_email:
            mails.append(Planned(provider_email, "provider_cancelled", now))
    return mails


def _reminder_due(event: Event, settings: Settings) -> datetime | None:
    """When the reminder is due; None when that moment had passed at the change."""
    if settings.reminder_seconds <= 0 or event.start_time is None:
        return None
    due = event.start_time - timedelta(seconds=settings.reminder_seconds)
    return due if due > event.occurred_at else None


@dataclass(frozen=True)
class SeriesOf:
    """What a series' messages need of it: its rule, and the weeks booked (k from 0)."""

    id: uuid.UUID
    first_start: datetime
    interval_weeks: int
    count: int
    booked_weeks: frozenset[int]


@dataclass(frozen=True)
class Letter:
    """Everything a message needs, read from the database when it is sent."""

    delivery_id: uuid.UUID
    template: str
    recipient: str
    event: Event
    client: Party
    provider: Party
    type_name: str | None
    # Of an occurrence of a series: the series, and the occurrence's start as booked.
    series: SeriesOf | None = None
    series_start: datetime | None = None


_WORDS = {
    "confirmed": ("Booking confirmed", "Your booking is confirmed.", "REQUEST"),
    "rescheduled": ("Booking moved", "Your booking has moved to a new time.", "REQUEST"),
    "cancelled": ("Booking cancelled", "Your booking has been cancelled.", "CANCEL"),
    "reminder": ("Reminder", "A reminder of your booking.", None),
    "provider_confirmed": ("New booking", "A booking with you is confirmed.", None),
    "provider_rescheduled": ("Booking moved", "A booking with you has moved.", None),
    "provider_cancelled": ("Booking cancelled", "A booking with you was cancelled.", None),
    "series_confirmed": (
        "Weekly booking confirmed",
        "Your weekly booking is confirmed.",
        "REQUEST",
    ),
    "provider_series_confirmed": (
        "New weekly booking",
        "A weekly booking with you is confirmed.",
        None,
    ),
}


def _when(start: datetime, end: datetime, zone: str) -> str:
    tz = ZoneInfo(zone)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    return f"{local_start:%A %d %B %Y, %H:%M}–{local_end:%H:%M} ({zone})"


def one_line(text: str) -> str:
    """`text` with every line break Python knows (U+2028, U+0085, ...) made a space:
    header values may not break lines, and names stored before the API refused such
    characters must not make a message impossible to build."""
    return " ".join(text.splitlines())


def compose(letter: Letter, settings: Settings, now: datetime) -> EmailMessage:
    event = letter.event
    assert event.start_time is not None
    assert event.end_time is not None
    title, headline, method = _WORDS[letter.template]
    for_provider = letter.template.startswith("provider_")
    what = letter.type_name or "Appointment"
    when = _when(event.start_time, event.end_time, letter.provider.timezone)
    previous = None
    if event.previous_start is not None and event.previous_end is not None:
        previous = _when(event.previous_start, event.previous_end, letter.provider.timezone)
    series = letter.series
    if letter.template.endswith("series_confirmed") and series is not None:
        weeks = (
            "every week" if series.interval_weeks == 1 else f"every {series.interval_weeks} weeks"
        )
        booked = len(series.booked_weeks)
        when = f"{weeks}, {booked} appointment(s), the first on {when}"
    subject = f"{title}: {what} on {when}"
    context = {
        "subject": subject,
        "greeting": letter.provider.name if for_provider else letter.client.name,
        "headline": headline,
        "what": what,
        "when": when,
        "previous": previous,
        "counterpart": letter.client.name if for_provider else letter.provider.name,
        "closing": "The invite attached updates your calendar."
        if method
        else "See you then."
        if letter.template == "reminder"
        else "",
        "reservation_id": str(event.reservation_id),
    }
    message = EmailMessage()
    message["Subject"] = one_line(subject)
    message["From"] = settings.mail_from
    message["To"] = letter.recipient
    message["Date"] = format_datetime(now)
    # Stable across retries, so a receiving server can drop a duplicate.
    message["Message-ID"] = f"<{letter.delivery_id}@appointments>"
    message.set_content(_templates.get_template("mail.txt").render(context))
    message.add_alternative(_templates.get_template("mail.html").render(context), subtype="html")
    organizer = letter.provider.email or parseaddr(settings.mail_from)[1]
    summary = f"{what} with {letter.provider.name}"
    if letter.template == "series_confirmed" and series is not None:
        weekly = Weekly(
            uid=series_uid(series.id),
            sequence=0,
            first_start=series.first_start,
            duration=event.end_time - event.start_time,
            zone=letter.provider.timezone,
            interval_weeks=series.interval_weeks,
            count=series.count,
            excluded_weeks=[k for k in range(series.count) if k not in series.booked_weeks],
            summary=summary,
            stamp=event.occurred_at,
        )
        calendar = series_invite(weekly, organizer=organizer, attendee=letter.recipient)
        _attach(message, calendar, "REQUEST")
    elif method is not None:
        assert event.reservation_id is not None  # every event with an invite is a booking's
        occurrence = None
        if series is not None and letter.series_start is not None:
            occurrence = Occurrence(
                series_uid(series.id), letter.series_start, letter.provider.timezone
            )
        calendar = invite(
            method=method,
            uid=booking_uid(event.reservation_id),
            # Each move raises the revision; a cancel outranks every version before it.
            sequence=(event.revision or 0) + (1 if method == "CANCEL" else 0),
            start=event.start_time,
            end=event.end_time,
            summary=summary,
            organizer=organizer,
            attendee=letter.recipient,
            stamp=event.occurred_at,
            occurrence=occurrence,
        )
        _attach(message, calendar, method)
    return message


def _attach(message: EmailMessage, calendar: str, method: str) -> None:
    message.add_attachment(
        calendar.encode(),
        maintype="text",
        subtype="calendar",
        filename="invite.ics",
        params={"method": method, "charset": "utf-8"},
    )


async def send(message: EmailMessage, settings: Settings, delivery_id: uuid.UUID) -> None:
    """Through SMTP when a URL is set; otherwise into `mail_dir` as an `.eml` file."""
    if settings.smtp_url is None:
        await asyncio.to_thread(_write_file, message, Path(settings.mail_dir), delivery_id)
        return
    url = urlsplit(settings.smtp_url.get_secret_value())
    secure = url.scheme == "smtps"
    await aiosmtplib.send(
        message,
        hostname=url.hostname or "localhost",
        port=url.port or (465 if secure else 587 if url.scheme == "smtp+starttls" else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=secure,
        start_tls=url.scheme == "smtp+starttls",
        timeout=settings.webhook_timeout_seconds,
    )


def _write_file(message: EmailMessage, directory: Path, delivery_id: uuid.UUID) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{delivery_id}.eml"
    partial = target.with_suffix(".eml.partial")
    partial.write_bytes(bytes(message))
    # Atomic: a reader never sees half a message, and a retry replaces, never duplicates.
    os.replace(partial, target)
