"""The terms an appointment is booked on: its length, buffers, notice, horizon and cap.

A plain one-slot reserve follows the same rules with the service's own defaults
(one slot, no buffers, the service's notice, no horizon, no cap), so every
booking path asks one object the same questions.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from appointments.scheduling import rules as core
from appointments.settings import Settings


class TypeTerms(Protocol):
    """What rules are made of: an `AppointmentType`, or the same columns as plain values."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def duration_minutes(self) -> int: ...
    @property
    def buffer_before_minutes(self) -> int: ...
    @property
    def buffer_after_minutes(self) -> int: ...
    @property
    def min_notice_minutes(self) -> int | None: ...
    @property
    def max_advance_days(self) -> int | None: ...
    @property
    def max_per_day(self) -> int | None: ...
    @property
    def change_notice_minutes(self) -> int: ...
    @property
    def capacity(self) -> int: ...


@dataclass(frozen=True)
class Span:
    """What an appointment starting at `start` occupies: [occupied_start, occupied_end)."""

    start: datetime
    end: datetime
    occupied_start: datetime
    occupied_end: datetime
    slots: int


@dataclass(frozen=True)
class BookingRules:
    type_id: uuid.UUID | None
    duration: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    notice: timedelta
    max_advance: timedelta | None
    max_per_day: int | None
    change_notice: timedelta | None
    slot_length: timedelta
    # Clients sharing one appointment: more than 1 books group sessions.
    capacity: int = 1

    @classmethod
    def plain(cls, settings: Settings) -> "BookingRules":
        length = timedelta(minutes=settings.slot_minutes)
        return cls(
            type_id=None,
            duration=length,
            buffer_before=timedelta(0),
            buffer_after=timedelta(0),
            notice=core.service_notice(settings),
            max_advance=None,
            max_per_day=None,
            change_notice=None,
            slot_length=length,
        )

    @classmethod
    def of(cls, kind: TypeTerms, settings: Settings) -> "BookingRules":
        service_notice = core.service_notice(settings)
        own_notice = kind.min_notice_minutes
        return cls(
            type_id=kind.id,
            duration=timedelta(minutes=kind.duration_minutes),
            buffer_before=timedelta(minutes=kind.buffer_before_minutes),
            buffer_after=timedelta(minutes=kind.buffer_after_minutes),
            notice=service_notice if own_notice is None else timedelta(minutes=own_notice),
            max_advance=None
            if kind.max_advance_days is None
            else timedelta(days=kind.max_advance_days),
            max_per_day=kind.max_per_day,
            change_notice=timedelta(minutes=kind.change_notice_minutes),
            slot_length=timedelta(minutes=settings.slot_minutes),
            capacity=kind.capacity,
        )

    def with_length_of(
        self, start: datetime, end: datetime, occupied_start: datetime, occupied_end: datetime
    ) -> "BookingRules":
        """These rules for a booking that keeps the length and buffers it was made with."""
        return BookingRules(
            type_id=self.type_id,
            duration=end - start,
            buffer_before=start - occupied_start,
            buffer_after=occupied_end - end,
            notice=self.notice,
            max_advance=self.max_advance,
            max_per_day=self.max_per_day,
            change_notice=self.change_notice,
            slot_length=self.slot_length,
            capacity=self.capacity,
        )

    @property
    def span_slots(self) -> int:
        """How many slots an appointment occupies, buffers included."""
        return (self.buffer_before + self.duration + self.buffer_after) // self.slot_length

    def span(self, start: datetime) -> Span:
        return Span(
            start=start,
            end=start + self.duration,
            occupied_start=start - self.buffer_before,
            occupied_end=start + self.duration + self.buffer_after,
            slots=self.span_slots,
        )

    @property
    def books_sessions(self) -> bool:
        """A group type: its appointments are sessions that clients take seats in."""
        return self.capacity > 1 and self.type_id is not None

    def bookable_after(self, now: datetime) -> datetime:
        return core.bookable_after(now, self.notice)

    def horizon(self, now: datetime) -> datetime | None:
        """The latest start allowed, or None for no limit."""
        return core.horizon(now, self.max_advance)

    def check_start(self, start: datetime, now: datetime) -> None:
        """Notice first, then horizon (the contract's order)."""
        core.check_notice(start, now, self.notice)
        core.check_horizon(start, now, self.max_advance)
