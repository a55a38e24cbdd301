"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from appointments.appointment_types.models import AppointmentType
from appointments.availability.models import Slot
from appointments.booking.models import Reservation, ReservationSlot
from appointments.clients.models import Client
from appointments.db import Base
from appointments.idempotency.models import IdempotencyKey
from appointments.notifications.models import Delivery, Event, WebhookEndpoint
from appointments.providers.models import Provider
from appointments.ratelimit.models import RateWindow

metadata = Base.metadata

__all__ = [
    "AppointmentType",
    "Client",
    "Delivery",
    "Event",
    "IdempotencyKey",
    "Provider",
    "RateWindow",
    "Reservation",
    "ReservationSlot",
    "Slot",
    "WebhookEndpoint",
    "metadata",
]
