"""RFC 5545 calendars of bookings: UTC times, stable UIDs, cancellations marked."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from appointments.scheduling.models import ReservationStatus

PRODID = "-//appointments//booking calendar//EN"
MAX_LINE_OCTETS = 75


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11)."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (3.1)."""
    encoded = line.encode()
    if len(encoded) <= MAX_LINE_OCTETS:
        return line
    parts: list[str] = []
    start, limit = 0, MAX_LINE_OCTETS
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        while end < len(encoded) and (encoded[end] & 0xC0) == 0x80:
            end -= 1  # back off to a character boundary
        parts.append(encoded[start:end].decode())
        start, limit = end, MAX_LINE_OCTETS - 1  # continuation lines start with a space
    return "\r\n ".join(parts)


class Booked(Protocol):
    """What a feed needs of a booking (a Reservation, or a plain row with these names)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...
    @property
    def end_time(self) -> datetime: ...


def calendar(name: str, bookings: Iterable[tuple[Booked, str]], generated_at: datetime) -> str:
    """A VCALENDAR with one VEVENT per (booking, summary).

    Written for feeds of 10^5 bookings: every line but SUMMARY is short by
    construction (never folded), and each distinct summary is escaped and folded once.
    """
    head = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_text(name)}",
    ]
    parts = ["".join(_fold(line) + "\r\n" for line in head)]
    stamp = f"DTSTAMP:{_utc(generated_at)}\r\n"
    summaries: dict[str, str] = {}
    for booking, summary in bookings:
        line = summaries.get(summary)
        if line is None:
            line = summaries[summary] = _fold(f"SUMMARY:{_text(summary)}") + "\r\n"
        cancelled = booking.status == ReservationStatus.CANCELLED
        parts.append(
            "BEGIN:VEVENT\r\n"
            # Stable across downloads, so calendar apps update instead of duplicating.
            f"UID:{booking.id}@appointments\r\n"
            f"{stamp}"
            f"DTSTART:{_utc(booking.start_time)}\r\n"
            f"DTEND:{_utc(booking.end_time)}\r\n"
            f"{line}"
            f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}\r\n"
            f"SEQUENCE:{1 if cancelled else 0}\r\n"
            "END:VEVENT\r\n"
        )
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts)


def invite(
    *,
    method: str,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    organizer: str,
    attendee: str,
    stamp: datetime,
) -> str:
    """An iTIP message (RFC 5546) for one appointment: `REQUEST` to add or update it in the
    attendee's calendar, `CANCEL` to remove it. Calendar apps match versions by UID and
    keep the one with the highest SEQUENCE."""
    cancelled = method == "CANCEL"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_utc(stamp)}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"SUMMARY:{_text(summary)}",
        f"ORGANIZER:mailto:{organizer}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{attendee}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)
