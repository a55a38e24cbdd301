"""RFC 5545 calendars of bookings: UTC times, stable UIDs, cancellations marked."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from icalendar import Timezone

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


@dataclass(frozen=True)
class Occurrence:
    """One instance of a series, for a change sent on its own: the series' UID, and the
    instance's start as the series' rule made it (its RECURRENCE-ID), on the wall clock
    of `zone`."""

    series_uid: str
    original_start: datetime
    zone: str


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
    occurrence: Occurrence | None = None,
) -> str:
    """An iTIP message (RFC 5546) for one appointment: `REQUEST` to add or update it in the
    attendee's calendar, `CANCEL` to remove it. Calendar apps match versions by UID and
    keep the one with the highest SEQUENCE. For one occurrence of a series, the series'
    UID and the occurrence's RECURRENCE-ID: the change applies to that instance only."""
    cancelled = method == "CANCEL"
    if occurrence is not None:
        uid = occurrence.series_uid
        local = occurrence.original_start.astimezone(ZoneInfo(occurrence.zone))
        moment = occurrence.original_start
        zone_lines = _timezone_lines(occurrence.zone, moment, moment)
        recurrence_id = (
            f"RECURRENCE-ID:{_utc(moment)}"
            if occurrence.zone == "UTC"
            else f"RECURRENCE-ID;TZID={occurrence.zone}:{local:%Y%m%dT%H%M%S}"
        )
        identity = [recurrence_id]
    else:
        zone_lines, identity = [], []
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        *zone_lines,
        "BEGIN:VEVENT",
        f"UID:{uid}",
        *identity,
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


def _timezone_lines(zone: str, first: datetime, last: datetime) -> list[str]:
    """The zone's VTIMEZONE over [first, last] as content lines (RFC 5545 wants one for
    every TZID used); none for UTC."""
    if zone == "UTC":
        return []
    block = Timezone.from_tzid(
        zone, first_date=first.date() - timedelta(days=1), last_date=last.date() + timedelta(days=1)
    )
    text: str = block.to_ical().decode()
    return [line for line in text.splitlines() if line]


def booking_uid(reservation_id: uuid.UUID) -> str:
    """The UID of one booking everywhere: its invite, the feeds, the provider's calendar."""
    return f"{reservation_id}@appointments"


def series_uid(series_id: uuid.UUID) -> str:
    """The UID of a weekly series (its invite's one VEVENT, and the provider's calendar)."""
    return f"series-{series_id}@appointments"


@dataclass(frozen=True)
class Weekly:
    """A weekly series as one recurring VEVENT: DTSTART in the provider's zone, an RRULE
    (`FREQ=WEEKLY;INTERVAL;COUNT`) that calendar apps expand on that wall clock (10:00
    stays 10:00 across a daylight-saving change), and an EXDATE for every occurrence
    that is not booked (`excluded_weeks`: k of the k-th, from 0)."""

    uid: str
    sequence: int
    first_start: datetime
    duration: timedelta
    zone: str
    interval_weeks: int
    count: int
    excluded_weeks: Iterable[int]
    summary: str
    stamp: datetime

    def wall(self, moment: datetime) -> str:
        if self.zone == "UTC":
            return f":{_utc(moment)}"
        return f";TZID={self.zone}:{moment.astimezone(ZoneInfo(self.zone)):%Y%m%dT%H%M%S}"

    def _on_week(self, k: int) -> str:
        """The k-th instance as the rule makes it: DTSTART's wall clock, k steps on."""
        local = self.first_start.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        moment = local + timedelta(weeks=self.interval_weeks * k)
        if self.zone == "UTC":
            return f":{moment:%Y%m%dT%H%M%S}Z"
        return f";TZID={self.zone}:{moment:%Y%m%dT%H%M%S}"

    def zone_lines(self, *also: datetime) -> list[str]:
        last = self.first_start + timedelta(weeks=self.interval_weeks * (self.count - 1))
        moments = [self.first_start, last, *also]
        return _timezone_lines(self.zone, min(moments), max(moments))

    def event_lines(self, extra: Iterable[str] = ()) -> list[str]:
        local = self.first_start.astimezone(ZoneInfo(self.zone))
        return [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            f"SEQUENCE:{self.sequence}",
            f"DTSTAMP:{_utc(self.stamp)}",
            f"DTSTART{self.wall(self.first_start)}",
            f"DTEND{self.wall(local + self.duration)}",
            f"RRULE:FREQ=WEEKLY;INTERVAL={self.interval_weeks};COUNT={self.count}",
            *(f"EXDATE{self._on_week(k)}" for k in sorted(self.excluded_weeks)),
            f"SUMMARY:{_text(self.summary)}",
            *extra,
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]


def series_invite(series: Weekly, *, organizer: str, attendee: str) -> str:
    """A `REQUEST` for a weekly series as one VEVENT (`Weekly`)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        *series.zone_lines(),
        *series.event_lines(
            [
                f"ORGANIZER:mailto:{organizer}",
                f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{attendee}",
            ]
        ),
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


# --- calendar objects kept in the provider's own (CalDAV) calendar -------------------
# Stored objects carry no METHOD (RFC 4791 5.3.2) and keep the invite's UID, so the
# booking is one event wherever it shows; written whole each time (PUT), they say the
# booking's state now, whatever the order the writes arrive in.


def _stored(lines: list[str]) -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    return "".join(_fold(line) + "\r\n" for line in [*head, *lines, "END:VCALENDAR"])


def stored_booking(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    stamp: datetime,
) -> str:
    """One confirmed booking as a calendar object."""
    return _stored(
        [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"SEQUENCE:{sequence}",
            f"DTSTAMP:{_utc(stamp)}",
            f"DTSTART:{_utc(start)}",
            f"DTEND:{_utc(end)}",
            f"SUMMARY:{_text(summary)}",
            f"DESCRIPTION:{_text(description)}",
            "STATUS:CONFIRMED",
            "TRANSP:OPAQUE",
            "END:VEVENT",
        ]
    )


@dataclass(frozen=True)
class Moved:
    """An occurrence of a series booked away from the rule's time: its RECURRENCE-ID is
    the start the rule gave it."""

    original_start: datetime
    start: datetime
    end: datetime


def stored_series(series: Weekly, moved: Iterable[Moved], description: str) -> str:
    """A weekly series as one calendar object: the recurring VEVENT, and one VEVENT per
    occurrence moved off the rule's time (same UID, RECURRENCE-ID)."""
    moved = sorted(moved, key=lambda m: m.original_start)
    overrides: list[str] = []
    for one in moved:
        overrides += [
            "BEGIN:VEVENT",
            f"UID:{series.uid}",
            f"RECURRENCE-ID{series.wall(one.original_start)}",
            f"SEQUENCE:{series.sequence}",
            f"DTSTAMP:{_utc(series.stamp)}",
            f"DTSTART:{_utc(one.start)}",
            f"DTEND:{_utc(one.end)}",
            f"SUMMARY:{_text(series.summary)}",
            f"DESCRIPTION:{_text(description)}",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
    also = [m.original_start for m in moved]
    return _stored(
        [
            *series.zone_lines(*also),
            *series.event_lines([f"DESCRIPTION:{_text(description)}", "TRANSP:OPAQUE"]),
            *overrides,
        ]
    )
