"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from appointments.appointment_types.models import AppointmentType
from appointments.availability.schedule_models import Schedule, ScheduleOverride, TimeOff
from appointments.busy.models import BusyInterval, Calendar
from appointments.clients.models import Client
from appointments.db import Base
from appointments.idempotency.models import IdempotencyKey
from appointments.notifications.models import Delivery, WebhookEndpoint
from appointments.providers.models import Provider
from appointments.ratelimit.models import RateWindow
from appointments.scheduling.events import Event
from appointments.scheduling.models import Reservation, ReservationSlot, Slot

metadata = Base.metadata

__all__ = [
    "AppointmentType",
    "BusyInterval",
    "Calendar",
    "Client",
    "Delivery",
    "Event",
    "IdempotencyKey",
    "Provider",
    "RateWindow",
    "Reservation",
    "ReservationSlot",
    "Schedule",
    "ScheduleOverride",
    "Slot",
    "TimeOff",
    "WebhookEndpoint",
    "metadata",
]
