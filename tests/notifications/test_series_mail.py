"""A confirmed series is told in one message with one invite (RRULE and EXDATE on the
provider's wall clock, across a daylight-saving change); a change to one occurrence goes
out with its RECURRENCE-ID and a raised SEQUENCE. Each invite is parsed with
`icalendar` and expanded with `recurring-ical-events`, as a calendar app would."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import recurring_ical_events
from icalendar import Calendar

from tests.api import Api
from tests.notifications.test_mail import Inbox, inbox, invite  # noqa: F401

# Thursdays at 10:00 in Berlin: CET (09:00Z) until 28 March 2027, then CEST (08:00Z).
WEEKS = [
    datetime(2027, 3, 18, 9, tzinfo=UTC),
    datetime(2027, 3, 25, 9, tzinfo=UTC),
    datetime(2027, 4, 1, 8, tzinfo=UTC),
    datetime(2027, 4, 8, 8, tzinfo=UTC),
]


def expand(calendar: Calendar) -> list[datetime]:
    """The instances a calendar app shows in spring 2027, in UTC."""
    found = recurring_ical_events.of(calendar).between(date(2027, 3, 1), date(2027, 5, 1))
    return sorted(event["DTSTART"].dt.astimezone(UTC) for event in found)


def merged(series: Calendar, *changes: Any) -> Calendar:
    """The attendee's calendar after applying each change's VEVENT (same UID)."""
    calendar = Calendar.from_ical(series.to_ical())
    for change in changes:
        calendar.add_component(change)
    return calendar


def test_a_series_is_one_invite_and_a_moved_occurrence_overrides_one_instance(
    api: Api,
    inbox: Inbox,  # noqa: F811
) -> None:
    provider = api.provider("Dr Ada", timezone="Europe/Berlin", email="ada@clinic.example")
    bob = api.customer("Bob", "bob@example.com")
    for k, start in enumerate(WEEKS):
        if k != 2:  # the third week has no slot: skipped
            api.publish(provider["id"], start, start + timedelta(hours=2))
    first = api.slot_at(provider["id"], WEEKS[0])
    series = api.ok(
        "POST",
        f"/clients/{bob['id']}/series",
        201,
        json={"slot_id": first, "repeat": {"count": 4}, "policy": "available"},
    )
    assert [s["start_time"] for s in series["skipped"]] == ["2027-04-01T08:00:00Z"]
    api.ok("POST", f"/clients/{bob['id']}/series/{series['id']}/confirm")
    api.deliver()

    [confirmation] = inbox.to("bob@example.com")
    assert confirmation["Subject"].startswith("Weekly booking confirmed")
    [to_provider] = inbox.to("ada@clinic.example")
    assert to_provider["Subject"].startswith("New weekly booking")
    calendar, event = invite(confirmation)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"series-{series['id']}@appointments"
    rule = event["RRULE"]
    assert (rule["FREQ"], rule["INTERVAL"], rule["COUNT"]) == (["WEEKLY"], [1], [4])
    assert str(event["DTSTART"].params["TZID"]) == "Europe/Berlin"
    assert calendar.walk("VTIMEZONE")
    # Exactly the booked weeks, each at 10:00 Berlin whatever the offset.
    assert expand(calendar) == [WEEKS[0], WEEKS[1], WEEKS[3]]

    # One occurrence moves to 11:00: the change names that instance only.
    second = series["reservations"][1]
    later = api.slot_at(provider["id"], WEEKS[1] + timedelta(hours=1))
    api.ok(
        "POST",
        f"/providers/{provider['id']}/reservations/{second['id']}/reschedule",
        json={"slot_id": later},
    )
    api.deliver()
    [moved] = [m for m in inbox.to("bob@example.com") if m["Subject"].startswith("Booking moved")]
    _, change = invite(moved)
    assert str(change["UID"]) == f"series-{series['id']}@appointments"
    assert change["RECURRENCE-ID"].dt.astimezone(UTC) == WEEKS[1]
    assert change["SEQUENCE"] == 1
    assert expand(merged(calendar, change)) == [WEEKS[0], WEEKS[1] + timedelta(hours=1), WEEKS[3]]

    # The last occurrence is cancelled: a CANCEL for that instance, SEQUENCE raised.
    last = series["reservations"][2]
    api.ok("POST", f"/clients/{bob['id']}/reservations/{last['id']}/cancel", json={})
    api.deliver()
    [gone] = [m for m in inbox.to("bob@example.com") if m["Subject"].startswith("Booking cancel")]
    cancel_calendar, cancel = invite(gone)
    assert str(cancel_calendar["METHOD"]) == "CANCEL"
    assert cancel["RECURRENCE-ID"].dt.astimezone(UTC) == WEEKS[3]
    assert cancel["SEQUENCE"] >= 1
    assert str(cancel["STATUS"]) == "CANCELLED"
    # Three occurrences confirmed: one message to each party, none per occurrence.
    subjects = [m["Subject"].split(":")[0] for m in inbox.messages]
    assert subjects.count("Weekly booking confirmed") == 1
    assert subjects.count("New weekly booking") == 1
    assert "Booking confirmed" not in subjects
