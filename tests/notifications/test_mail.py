"""Mail through the outbox, over a real SMTP conversation (aiosmtpd), invites parsed
with `icalendar`; reminders that never go stale; `.eml` files without SMTP."""

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from icalendar import Calendar
from pydantic import SecretStr

from appointments.clock import FrozenClock
from appointments.notifications import mail
from tests.api import Api, Json
from tests.conftest import START
from tests.postgres_server import free_port

DAY = START + timedelta(days=3)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def inbox(api: Api) -> Iterator[Inbox]:
    """A real SMTP server on loopback, and the service configured to send through it."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    api.configure(
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"), mail_from="Clinic <clinic@example.com>"
    )
    try:
        yield handler
    finally:
        controller.stop()


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    content: str = part.get_content()
    return content


def invite(message: EmailMessage) -> Any:
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    calendar = Calendar.from_ical(parts[0].get_content())
    [event] = calendar.walk("VEVENT")
    return calendar, event


def booked(api: Api, provider_email: str | None = "ada@clinic.example") -> tuple[Json, Json, Json]:
    fields = {"email": provider_email} if provider_email else {}
    provider = api.provider("Dr Ada", timezone="Europe/Berlin", **fields)
    bob = api.customer("Bob", "bob@example.com")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    slot = api.slot_at(provider["id"], DAY)
    held = api.reserve(bob["id"], slot).json()
    confirmed = api.ok("POST", f"/clients/{bob['id']}/confirm", json={"reservation_id": held["id"]})
    return provider, bob, confirmed


def test_confirm_reschedule_cancel_send_invites_that_update_one_event(
    api: Api, inbox: Inbox
) -> None:
    provider, bob, booking = booked(api)
    api.deliver()
    [confirmation] = inbox.to("bob@example.com")
    assert confirmation["Subject"].startswith("Booking confirmed")
    assert "09:00" in body(confirmation, "plain")  # Berlin time
    assert "<strong>" in body(confirmation, "html")
    calendar, event = invite(confirmation)
    assert str(calendar["METHOD"]) == "REQUEST"
    uid = str(event["UID"])
    assert uid == f"{booking['id']}@appointments"
    assert (event["SEQUENCE"], event["DTSTART"].dt) == (0, DAY)
    [to_provider] = inbox.to("ada@clinic.example")
    assert to_provider["Subject"].startswith("New booking")
    assert "Bob" in body(to_provider, "plain")

    later = api.slot_at(provider["id"], DAY + timedelta(hours=1))
    api.ok(
        "POST",
        f"/providers/{provider['id']}/reservations/{booking['id']}/reschedule",
        json={"slot_id": later},
    )
    api.ok("POST", f"/clients/{bob['id']}/reservations/{booking['id']}/cancel", json={})
    api.deliver()
    # Sent in one round, concurrently: SEQUENCE, not arrival order, ranks the versions.
    later_mails = {m["Subject"].split(":")[0]: m for m in inbox.to("bob@example.com")[1:]}
    moved, cancelled = later_mails["Booking moved"], later_mails["Booking cancelled"]
    calendar, event = invite(moved)
    assert (str(calendar["METHOD"]), str(event["UID"])) == ("REQUEST", uid)
    assert (event["SEQUENCE"], event["DTSTART"].dt) == (1, DAY + timedelta(hours=1))
    assert "Was:" in body(moved, "plain")
    calendar, event = invite(cancelled)
    assert (str(calendar["METHOD"]), str(event["UID"]), str(event["STATUS"])) == (
        "CANCEL",
        uid,
        "CANCELLED",
    )
    assert event["SEQUENCE"] > 1
    assert sorted(m["Subject"].split(":")[0] for m in inbox.to("ada@clinic.example")) == [
        "Booking cancelled",
        "Booking moved",
        "New booking",
    ]


def test_holds_mail_nobody(api: Api, inbox: Inbox, clock: FrozenClock) -> None:
    provider, bob = api.provider(email="ada@clinic.example"), api.customer()
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    api.ok("POST", f"/clients/{bob['id']}/reservations/{held['id']}/cancel", json={})
    other = api.slot(provider["id"], DAY + timedelta(hours=1))
    api.reserve(bob["id"], other["id"])
    clock.advance(hours=1)
    api.ok("POST", "/admin/expire-reservations")
    api.deliver()
    assert inbox.messages == []


def test_the_reminder_comes_a_day_before_and_never_after_a_cancel(
    api: Api, inbox: Inbox, clock: FrozenClock
) -> None:
    booked(api, provider_email=None)
    # A second booking, cancelled before its reminder is due: no reminder at all.
    provider2, _, second = booked(api, provider_email=None)
    api.ok("POST", f"/providers/{provider2['id']}/reservations/{second['id']}/cancel", json={})
    api.deliver()
    subjects = [m["Subject"].split(":")[0] for m in inbox.messages]
    assert sorted(subjects) == ["Booking cancelled", "Booking confirmed", "Booking confirmed"]
    clock.set(DAY - timedelta(days=1, seconds=1))
    api.deliver()
    assert len(inbox.messages) == 3
    clock.advance(seconds=2)
    api.deliver()
    reminders = [m for m in inbox.messages if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 1
    assert not [p for p in reminders[0].walk() if p.get_content_type() == "text/calendar"]
    assert api.sql("SELECT status FROM deliveries WHERE template = 'reminder' ORDER BY status") == [
        ("delivered",),
        ("skipped",),
    ]


def test_a_moved_booking_gets_one_reminder_for_its_new_time(
    api: Api, inbox: Inbox, clock: FrozenClock
) -> None:
    provider, _, booking = booked(api, provider_email=None)
    later = api.slot_at(provider["id"], DAY + timedelta(hours=1))
    api.ok(
        "POST",
        f"/providers/{provider['id']}/reservations/{booking['id']}/reschedule",
        json={"slot_id": later},
    )
    api.deliver()
    clock.set(DAY)
    api.deliver()
    [reminder] = [m for m in inbox.messages if m["Subject"].startswith("Reminder")]
    assert "10:00" in body(reminder, "plain")


def test_no_reminder_when_its_time_had_passed_at_confirmation(api: Api, inbox: Inbox) -> None:
    api.configure(reminder_seconds=5 * 86400)
    booked(api, provider_email=None)
    api.deliver()
    assert api.sql("SELECT count(*) FROM deliveries WHERE template = 'reminder'") == [(0,)]
    assert len(inbox.messages) == 1


def test_without_smtp_each_message_is_an_eml_file(api: Api, tmp_path: Path) -> None:
    api.configure(smtp_url=None, mail_dir=str(tmp_path / "mail"))
    _, _, booking = booked(api)
    api.deliver()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    assert {m["To"] for m in parsed} == {"bob@example.com", "ada@clinic.example"}
    assert any(booking["id"] in m.as_string() for m in parsed)


def test_a_failed_smtp_send_is_retried(api: Api, clock: FrozenClock) -> None:
    api.configure(smtp_url=SecretStr(f"smtp://127.0.0.1:{free_port()}"))  # nobody listens
    booked(api, provider_email=None)
    api.deliver()
    [(status, attempts, error)] = api.sql(
        "SELECT status, attempts, last_error FROM deliveries WHERE channel = 'email' "
        "AND template = 'confirmed'"
    )
    assert (status, attempts) == ("pending", 1)
    assert error


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\u0085", "\x9b"])
def test_names_with_line_breaks_of_any_kind_are_422(api: Api, breaker: str) -> None:
    provider = api.provider()
    name = f"Check{breaker}up"
    for path, body in (
        ("/providers", {"name": name}),
        ("/clients", {"name": name, "email": "x@example.com"}),
        (f"/providers/{provider['id']}/appointment-types", {"name": name, "duration_minutes": 15}),
    ):
        response = api.client.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["loc"][-1] == "name", response.text
        assert api.client.post(path, json=body | {"name": "Checkup"}).status_code == 201
    assert api.sql("SELECT name FROM appointment_types") == [("Checkup",)]


def test_a_type_name_stored_with_a_line_separator_still_mails(api: Api, inbox: Inbox) -> None:
    """Names stored before the API refused them are folded out of the headers."""
    provider = api.provider("Dr Ada", timezone="Europe/Berlin", email="ada@clinic.example")
    kind = api.appointment_type(provider["id"], duration_minutes=15)
    api.sql("UPDATE appointment_types SET name = :name", name="Check\u2028up")
    bob = api.customer("Bob", "bob@example.com")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    held = api.reserve_type(bob["id"], api.slot_at(provider["id"], DAY), kind["id"]).json()
    api.ok("POST", f"/clients/{bob['id']}/confirm", json={"reservation_id": held["id"]})
    api.deliver()
    [confirmation] = inbox.to("bob@example.com")
    assert confirmation["Subject"].startswith("Booking confirmed: Check up on ")
    sent = "SELECT DISTINCT status FROM deliveries WHERE template <> 'reminder'"
    assert api.sql(sent) == [("delivered",)]


def test_a_message_that_cannot_be_built_fails_at_once_with_its_reason(
    api: Api, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unbuildable(*_args: Any) -> EmailMessage:
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    monkeypatch.setattr(mail, "compose", unbuildable)
    booked(api)
    api.deliver()
    rows = api.sql(
        "SELECT DISTINCT status, attempts, last_error FROM deliveries WHERE template <> 'reminder'"
    )
    assert rows == [
        (
            "failed",
            1,
            "the message cannot be built: "
            "Header values may not contain linefeed or carriage return characters",
        )
    ]
    assert inbox.messages == []
