"""A provider's CalDAV calendar (a real Radicale server) through the API, on SQLite and
PostgreSQL: its events block time as a feed's do (every instance of a recurring event,
EXDATE'd and moved instances honoured, transparent ones ignored), credentials it
refuses make the calendar say so and keep its busy time, and it recovers."""

from datetime import timedelta

from cryptography.fernet import Fernet
from pydantic import SecretStr

from tests.api import Api, iso
from tests.busy.radicale import Radicale
from tests.busy.test_calendars import DAY, connect, event, feed, settled, states, synced
from tests.conftest import START

WEEKLY = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Nextcloud//calendar//EN\r
BEGIN:VEVENT\r
UID:team-meeting\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Berlin:20270304T093000\r
DTEND;TZID=Europe/Berlin:20270304T100000\r
RRULE:FREQ=WEEKLY;COUNT=4\r
EXDATE;TZID=Europe/Berlin:20270311T093000\r
SUMMARY:Team meeting\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:team-meeting\r
DTSTAMP:20270101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20270318T093000\r
DTSTART;TZID=Europe/Berlin:20270318T110000\r
DTEND;TZID=Europe/Berlin:20270318T113000\r
SUMMARY:Team meeting (moved)\r
END:VEVENT\r
END:VCALENDAR\r
"""

FREE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//t//t//EN\r
BEGIN:VEVENT\r
UID:lunch\r
DTSTAMP:20270101T000000Z\r
DTSTART:20270304T090000Z\r
DTEND:20270304T100000Z\r
TRANSP:TRANSPARENT\r
SUMMARY:Lunch (shown as free)\r
END:VEVENT\r
END:VCALENDAR\r
"""


def with_key(api: Api) -> None:
    api.configure(secrets_key=SecretStr(Fernet.generate_key().decode()))


def connect_caldav(api: Api, provider: str, server: Radicale, url: str, **fields: object) -> str:
    user, password = server.auth
    added = connect(api, provider, url, kind="caldav", username=user, password=password, **fields)
    assert added["kind"] == "caldav"
    return str(added["id"])


def test_a_caldav_calendars_events_block_time(api: Api, caldav_server: Radicale) -> None:
    with_key(api)
    provider = api.provider("Dr Dav", timezone="Europe/Berlin")["id"]
    # Thursdays 4, 11, 18 and 25 March, 09:00-12:00 Berlin (08:00-11:00 UTC).
    for week in range(4):
        day = DAY + timedelta(weeks=week)
        api.publish(provider, day, day + timedelta(hours=3))
    calendar = caldav_server.make_calendar()
    caldav_server.put(calendar, "team-meeting", WEEKLY)
    caldav_server.put(calendar, "lunch", FREE)
    added = connect_caldav(api, provider, caldav_server, calendar)
    read = api.ok("GET", f"/providers/{provider}/calendars/{added}")
    assert (read["status"], read["last_error"]) == ("ok", None), read
    busy = [
        item["start_time"]
        for item in api.ok(
            "GET", f"/providers/{provider}/availability", params={"status": "all", "limit": 100}
        )["items"]
        if item["status"] == "busy"
    ]
    # 09:30-10:00 Berlin on the 4th and 25th; not the 11th (EXDATE); 11:00-11:30 on the
    # 18th (moved); the transparent lunch blocks nothing.
    assert busy == [
        iso(START + timedelta(days=3, minutes=30)),
        iso(START + timedelta(days=3, minutes=45)),
        iso(START + timedelta(days=17, hours=2)),
        iso(START + timedelta(days=17, hours=2, minutes=15)),
        iso(START + timedelta(days=24, minutes=30)),
        iso(START + timedelta(days=24, minutes=45)),
    ]
    assert read["busy_count"] == 3
    # The calendar changes on the server: the next read follows it.
    caldav_server.delete(calendar, "team-meeting")
    read = synced(api, provider, added)
    assert (read["status"], read["busy_count"]) == ("ok", 0)
    assert "busy" not in states(api, provider)


def test_credentials_the_server_refuses_fail_closed_and_recover(
    api: Api, caldav_server: Radicale
) -> None:
    with_key(api)
    provider = api.provider("Dr Dav")["id"]
    api.publish(provider, DAY, DAY + timedelta(hours=1))
    calendar = caldav_server.make_calendar()
    meeting = event("meeting", "20270304T083000Z", "20270304T090000Z")
    caldav_server.put(calendar, "meeting", feed(meeting).decode())
    added = connect_caldav(api, provider, caldav_server, calendar)
    path = f"/providers/{provider}/calendars/{added}"
    assert api.ok("GET", path)["busy_count"] == 1
    user, _ = caldav_server.auth
    body = {"kind": "caldav", "url": calendar, "username": user, "password": "wrong"}
    api.ok("PUT", path, 200, json=body)
    settled(api)
    read = synced(api, provider, added)
    assert read["status"] == "error", read
    assert "refused the credentials" in read["last_error"], read
    assert states(api, provider) == ["available"] * 2 + ["busy"] * 2  # fail closed
    told = api.sql("SELECT type FROM events WHERE type = 'calendar.sync_failed'")
    assert len(told) == 1
    # A calendar that does not exist says so.
    body = {**body, "password": caldav_server.auth[1], "url": calendar + "missing/"}
    api.ok("PUT", path, 200, json=body)
    settled(api)
    read = synced(api, provider, added)
    assert (read["status"], read["busy_count"]) == ("error", 1)
    assert "not found" in read["last_error"] or "404" in read["last_error"], read
    # The right address and password again: back to ok by itself.
    api.ok("PUT", path, 200, json={**body, "url": calendar})
    settled(api)
    read = synced(api, provider, added)
    assert (read["status"], read["last_error"], read["busy_count"]) == ("ok", None, 1)
