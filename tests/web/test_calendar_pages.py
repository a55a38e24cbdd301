"""The provider's other calendars on its page: connect an iCal address or a CalDAV
calendar that takes bookings, see it read
(status, busy time, the bookings it overlaps, the last error), read it now, disconnect."""

from collections.abc import Callable
from datetime import timedelta

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.busy.feeds import Feeds
from tests.busy.radicale import Radicale
from tests.busy.test_caldav import with_key
from tests.busy.test_calendars import DAY, event, feed, settled
from tests.web.browser import Browser


def test_a_provider_connects_a_calendar_and_sees_what_it_blocks(
    api: Api, new_browser: Callable[[], Browser], feeds: Feeds
) -> None:
    provider = api.provider("Dr Ada", timezone="UTC")
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    held = api.reserve(api.customer()["id"], slots[3]["id"])
    assert held.status_code == 201
    url = feeds.serve("/mine.ics", feed(event("a@x", "20270304T083000Z", "20270304T090000Z")))
    desk = new_browser()
    desk.sign_in(bearer(Role.PROVIDER, provider["id"])["Authorization"][7:])
    connected = desk.submit("/provider/calendars", {"url": url}, from_page="/provider/schedule")
    assert "Calendar connected" in connected.text
    settled(api)
    page = desk.get("/provider/schedule").text
    assert url in page
    assert 'class="tag status-ok">ok<' in page
    assert "1 busy stretch</small>" in page
    # The held booking at 08:45 is under the busy time: listed, kept.
    assert "Thu 4 Mar 2027, 08:45–09:00" in page
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    # The feed breaks: the page says why; busy time stands.
    feeds.answers["/mine.ics"] = (500, {}, b"")
    [calendar] = api.ok("GET", f"/providers/{provider['id']}/calendars")["items"]
    desk.submit(f"/provider/calendars/{calendar['id']}/sync", {}, from_page="/provider/schedule")
    settled(api)
    page = desk.get("/provider/schedule").text
    assert "Last read failed: the feed answered HTTP 500" in page
    assert api.ok("GET", f"/providers/{provider['id']}/availability")["items"][0]["start_time"]
    # Disconnected: its busy time goes with it.
    gone = desk.submit(
        f"/provider/calendars/{calendar['id']}/delete", {}, from_page="/provider/schedule"
    )
    assert "Calendar disconnected" in gone.text
    assert api.ok("GET", f"/providers/{provider['id']}/calendars")["items"] == []
    refused = desk.submit(
        "/provider/calendars", {"url": "ftp://example.com/a.ics"}, from_page="/provider/schedule"
    )
    assert "That calendar was not connected: the calendar&#39;s url must be http" in refused.text


def test_a_provider_connects_a_caldav_calendar_that_takes_bookings(
    api: Api, new_browser: Callable[[], Browser], caldav_server: Radicale
) -> None:
    with_key(api)
    provider = api.provider("Dr Ada", timezone="UTC")
    slots = api.publish(provider["id"], DAY, DAY + timedelta(hours=1))["slots"]
    calendar = caldav_server.make_calendar()
    caldav_server.put(
        calendar, "meeting", feed(event("m", "20270304T080000Z", "20270304T081500Z")).decode()
    )
    desk = new_browser()
    desk.sign_in(bearer(Role.PROVIDER, provider["id"])["Authorization"][7:])
    user, password = caldav_server.auth
    form = {
        "kind": "caldav",
        "url": calendar,
        "username": user,
        "password": password,
        "write_bookings": "true",
    }
    connected = desk.submit("/provider/calendars", form, from_page="/provider/schedule")
    assert "Calendar connected" in connected.text
    settled(api)
    page = desk.get("/provider/schedule").text
    assert f"CalDAV <code>{calendar}</code>" in page
    assert 'class="tag status-ok">ok<' in page
    assert "bookings written here" in page
    assert "1 busy stretch</small>" in page
    # A booking confirmed through the API lands in that calendar.
    bob = api.customer()["id"]
    held = api.reserve(bob, slots[2]["id"]).json()
    api.confirm(bob, held["id"])
    api.deliver()
    assert caldav_server.names(calendar) == sorted([f"{held['id']}.ics", "meeting.ics"])
