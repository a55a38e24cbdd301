"""The JSON body of an event, exactly as every delivery of it sends it."""

import json
from datetime import datetime
from typing import Any

from appointments.booking.schemas import ReservationOut
from appointments.scheduling.events import Event, EventType
from appointments.scheduling.models import ReservationStatus


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def reservation_of(event: Event) -> ReservationOut:
    """The reservation as the API showed it right after the change."""
    assert event.reservation_id is not None, "a ping carries no reservation"
    return ReservationOut.model_validate(
        {
            "id": event.reservation_id,
            "slot_id": event.slot_id,
            "client_id": event.client_id,
            "provider_id": event.provider_id,
            "appointment_type_id": event.appointment_type_id,
            "start_time": event.start_time,
            "end_time": event.end_time,
            "status": ReservationStatus(str(event.status)),
            "created_at": event.reservation_created_at,
            "expires_at": event.expires_at,
            "confirmed_at": event.confirmed_at,
            "cancelled_at": event.cancelled_at,
            "series_id": event.series_id,
            "session_id": event.session_id,
            "seats": event.seats or 1,
        }
    )


def data_of(event: Event) -> dict[str, Any]:
    if event.type == EventType.CALENDAR_SYNC_FAILED:
        return {
            "calendar_id": str(event.calendar_id),
            "provider_id": str(event.provider_id),
            "error": event.detail,
        }
    if event.reservation_id is None:
        return {"endpoint_id": str(event.endpoint_id), "message": "ping"}
    data: dict[str, Any] = {"reservation": reservation_of(event).model_dump(mode="json")}
    if event.previous_start is not None and event.previous_end is not None:
        data["previous"] = {
            "start_time": _time(event.previous_start),
            "end_time": _time(event.previous_end),
        }
    return data


def body_of(event: Event) -> bytes:
    """`{"type", "timestamp", "data"}`: the same bytes on every attempt."""
    document = {"type": event.type, "timestamp": _time(event.occurred_at), "data": data_of(event)}
    return json.dumps(document, separators=(",", ":")).encode()
