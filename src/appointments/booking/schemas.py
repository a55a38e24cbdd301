import uuid
from datetime import datetime
from typing import Protocol

from pydantic import Field, StrictBool, StrictInt

from appointments.scheduling import rules
from appointments.scheduling.models import ReservationStatus, SeriesPolicy
from appointments.schemas import RequestBody, ResponseBody, UtcTime

# Ids are opaque strings; an unknown one (or one that cannot exist) is a 404, not a 422.
OpaqueId = str


class ReserveIn(RequestBody):
    slot_id: OpaqueId = Field(
        max_length=64,
        examples=["3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10"],
        description="The slot to hold; with `appointment_type_id`, the appointment's first slot.",
    )
    appointment_type_id: OpaqueId | None = Field(
        default=None,
        max_length=64,
        description="Book an appointment of this type of the slot's provider: every slot of "
        "the appointment and its buffers is held, or none is.",
    )
    seats: StrictInt = Field(
        default=1,
        ge=1,
        le=500,
        description="Places in a group session (a type with `capacity` > 1): joins the "
        "session of the type starting at `slot_id`, or opens one. More than are left: 409 "
        "`session_full` with `seats_left`.",
    )


class RescheduleIn(RequestBody):
    slot_id: OpaqueId = Field(
        max_length=64,
        examples=["3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10"],
        description="The slot the appointment should start at.",
    )


class ConfirmIn(RequestBody):
    reservation_id: OpaqueId = Field(
        max_length=64, examples=["9b2e7f5c-4c1e-4f7a-8d5e-2b0c9e1a3d44"]
    )


class CancelIn(RequestBody):
    remove_slot: StrictBool = Field(
        default=False,
        description="Withdraw the slot instead of making it available again (providers only).",
    )


class ReservationFields(Protocol):
    """What an answer shows of a reservation: an ORM `Reservation`, or the plain row a
    statement committing by itself returns (`one_statement.ReservationRow`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def slot_id(self) -> uuid.UUID: ...
    @property
    def client_id(self) -> uuid.UUID: ...
    @property
    def provider_id(self) -> uuid.UUID: ...
    @property
    def appointment_type_id(self) -> uuid.UUID | None: ...
    @property
    def status(self) -> str: ...
    @property
    def start_time(self) -> datetime: ...
    @property
    def end_time(self) -> datetime: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def confirmed_at(self) -> datetime | None: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def series_id(self) -> uuid.UUID | None: ...
    @property
    def session_id(self) -> uuid.UUID | None: ...
    @property
    def seats(self) -> int: ...


class ReservationOut(ResponseBody):
    id: uuid.UUID
    slot_id: uuid.UUID
    client_id: uuid.UUID
    provider_id: uuid.UUID
    appointment_type_id: uuid.UUID | None = Field(
        description="The appointment type it was booked as; null for a plain one-slot reserve."
    )
    start_time: datetime = Field(
        description="When the appointment starts (the start of the slot `slot_id`)."
    )
    end_time: datetime = Field(description="When the appointment ends (buffers not included).")
    status: ReservationStatus
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    series_id: uuid.UUID | None = Field(
        default=None, description="The recurring series this is an occurrence of, or null."
    )
    seats: int = Field(
        default=1, ge=1, description="Places it takes: 1, or more in a group session."
    )
    session_id: uuid.UUID | None = Field(
        default=None,
        description="The group session it is a seat in (types with `capacity` > 1), or null.",
    )

    @classmethod
    def at(cls, reservation: ReservationFields, now: datetime) -> "ReservationOut":
        """The reservation as seen at `now`: a run-out hold reads as expired."""
        status = ReservationStatus(reservation.status)
        if rules.hold_has_run_out(status, reservation.expires_at, now):
            status = ReservationStatus.EXPIRED
        return cls(
            id=reservation.id,
            slot_id=reservation.slot_id,
            client_id=reservation.client_id,
            provider_id=reservation.provider_id,
            appointment_type_id=reservation.appointment_type_id,
            start_time=reservation.start_time,
            end_time=reservation.end_time,
            status=status,
            created_at=reservation.created_at,
            expires_at=reservation.expires_at,
            confirmed_at=reservation.confirmed_at,
            cancelled_at=reservation.cancelled_at,
            series_id=reservation.series_id,
            seats=reservation.seats,
            session_id=reservation.session_id,
        )


class ExpiredCount(ResponseBody):
    expired: int = Field(description="Holds that ran out and were marked expired by this call.")


class RepeatIn(RequestBody):
    interval_weeks: StrictInt = Field(
        default=1, ge=1, le=4, description="Weeks between occurrences."
    )
    count: StrictInt = Field(ge=2, le=52, description="How many occurrences, the first included.")


class SeriesIn(RequestBody):
    slot_id: OpaqueId = Field(
        max_length=64,
        examples=["3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10"],
        description="The first occurrence's slot (with `appointment_type_id`, its first slot).",
    )
    appointment_type_id: OpaqueId | None = Field(default=None, max_length=64)
    seats: StrictInt = Field(default=1, ge=1, le=500, description="Seats per occurrence.")
    repeat: RepeatIn
    policy: SeriesPolicy = Field(
        default=SeriesPolicy.ALL,
        description="`all`: every occurrence is held, or none (409 `series_conflict`); "
        "`available`: those that pass are held, the others listed in `skipped`.",
    )


class RefusalOut(ResponseBody):
    """An occurrence left out of a series (or left in place by a cancel), and why."""

    start_time: datetime
    code: str = Field(description="The problem code a single reserve (or cancel) would answer.")


class RepeatOut(ResponseBody):
    interval_weeks: int
    count: int


class SeriesOut(ResponseBody):
    id: uuid.UUID
    client_id: uuid.UUID
    provider_id: uuid.UUID
    appointment_type_id: uuid.UUID | None
    repeat: RepeatOut
    policy: SeriesPolicy
    expires_at: datetime = Field(description="When the held occurrences' hold runs out.")
    reservations: list[ReservationOut] = Field(description="The occurrences, by start time.")
    skipped: list[RefusalOut] = Field(
        default_factory=list, description="Occurrences not held (`policy=available`)."
    )
    kept: list[RefusalOut] = Field(
        default_factory=list,
        description="Occurrences a client's cancel left in place (inside the change notice).",
    )


class SeriesCancelIn(RequestBody):
    from_start_time: UtcTime | None = Field(
        default=None,
        description="Cancel the live occurrences starting at or after this; default: every "
        "one not yet started.",
    )


class SessionOut(ResponseBody):
    """A group session: one appointment of a type with `capacity` > 1 that several
    clients share."""

    id: uuid.UUID
    provider_id: uuid.UUID
    appointment_type_id: uuid.UUID
    slot_id: uuid.UUID = Field(description="The slot it starts at: reserve it to join.")
    start_time: datetime
    end_time: datetime
    capacity: int
    seats_taken: int = Field(description="Seats of its live (held or confirmed) reservations.")
    reservations: list[ReservationOut] = Field(
        description="Its live seats, in booking order; in a cancel's answer, the seats that "
        "cancel ended."
    )
