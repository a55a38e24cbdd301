"""RFC 5545 calendars of bookings: UTC times, stable UIDs, cancellations marked."""

from collections.abc import Iterable
from datetime import datetime

from appointments.booking.models import Reservation, ReservationStatus

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


def calendar(name: str, bookings: Iterable[tuple[Reservation, str]], generated_at: datetime) -> str:
    """A VCALENDAR with one VEVENT per (reservation, summary)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_text(name)}",
    ]
    for reservation, summary in bookings:
        cancelled = reservation.status == ReservationStatus.CANCELLED
        lines += [
            "BEGIN:VEVENT",
            # Stable across downloads, so calendar apps update instead of duplicating.
            f"UID:{reservation.id}@appointments",
            f"DTSTAMP:{_utc(generated_at)}",
            f"DTSTART:{_utc(reservation.start_time)}",
            f"DTEND:{_utc(reservation.end_time)}",
            f"SUMMARY:{_text(summary)}",
            f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
            f"SEQUENCE:{1 if cancelled else 0}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


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
