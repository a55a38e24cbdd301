"""The whole booking flow in a real browser: Debian's Chromium driven by Playwright,
against `appointments serve` with two worker processes.

Screenshots of every screen go to a temporary folder, or to docs/screens with
APPOINTMENTS_UPDATE_SCREENS=1 (how the README's pictures are made).
"""

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import sleep
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from appointments.auth.tokens import Role
from tests.api import Api, Json, bearer
from tests.busy.feeds import Feeds
from tests.busy.radicale import Radicale
from tests.busy.test_calendars import event, feed
from tests.live_server import live_server, publish_ahead

CHROMIUM = "/usr/bin/chromium"
# Browser downloads are impossible on these machines: no component updates, no sync.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN = bearer(Role.ADMIN, "e2e-admin")
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
DOCS_SCREENS = Path(__file__).parents[2] / "docs" / "screens"


@contextmanager
def browser(
    pw: Playwright, profile: Path, zone: str, width: int = 1280
) -> Iterator[BrowserContext]:
    """A fresh Chromium with its own user-data dir, in the given time zone."""
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        timezone_id=zone,
        locale="en-GB",
        viewport={"width": width, "height": 900},
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


# Form controls a screen reader could not name, and whether the page scrolls sideways.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
  .map(el => el.outerHTML)"""
SIDEWAYS = "() => document.documentElement.scrollWidth > window.innerWidth"


class Screens:
    """Saves each screen, and checks it on the way: every control labelled, no
    sideways scrolling (at phone width too)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_test(cls, tmp_path: Path) -> "Screens":
        """Into docs/screens with APPOINTMENTS_UPDATE_SCREENS=1, else the test's folder."""
        update = os.environ.get("APPOINTMENTS_UPDATE_SCREENS") == "1"
        return cls(DOCS_SCREENS if update else tmp_path / "screens")

    def shoot(self, page: Page, name: str) -> None:
        assert page.evaluate(UNLABELLED) == [], name
        assert not page.evaluate(SIDEWAYS), f"{name} scrolls sideways"
        page.screenshot(path=self.folder / f"{name}.png", full_page=True)


def label(moment: datetime, zone: ZoneInfo) -> str:
    """How the pages name a slot: 'Hold Fri 27 Nov 2026, 03:00'."""
    local = moment.astimezone(zone)
    return f"Hold {local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"


def sign_up(page: Page, base: str, name: str, email: str) -> None:
    """With the keyboard only: type, Tab to the next field, Enter submits."""
    page.goto(f"{base}/")
    page.get_by_label("Your name").focus()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(email)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Choose a provider")).to_be_visible()


def sign_in(page: Page, base: str, token: str) -> None:
    """At the home page, with an access token (an admin's or a provider's)."""
    page.goto(f"{base}/")
    page.get_by_role("textbox", name="Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def berlin_provider(http: httpx.Client) -> tuple[Json, str]:
    """Dr Ada Lovelace, whose hours are Berlin's, and her sign-in token."""
    made = http.post("/providers", json={"name": "Dr Ada Lovelace", "timezone": "Europe/Berlin"})
    provider: Json = made.json()
    return provider, bearer(Role.PROVIDER, provider["id"])["Authorization"].removeprefix("Bearer ")


def offer(http: httpx.Client, provider: Json, start: datetime, hours: int) -> None:
    """Publish `hours` of slots from `start` (an aware time)."""
    http.post(
        f"/providers/{provider['id']}/availability",
        json={
            "start_time": start.astimezone(UTC).isoformat(),
            "end_time": (start + timedelta(hours=hours)).astimezone(UTC).isoformat(),
        },
    ).raise_for_status()


@pytest.mark.live
def test_admin_creates_provider_publishes_client_books_and_a_rival_loses_the_race(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    screens = Screens.for_test(tmp_path)
    # Three days ahead in Berlin: past the 24-hour notice whatever the time of day.
    day: date = (datetime.now(BERLIN) + timedelta(days=3)).date()
    nine = datetime.combine(day, time(9), BERLIN)

    with (
        live_server(database_url, workers=2) as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
        sync_playwright() as pw,
    ):
        admin_token = ADMIN["Authorization"].removeprefix("Bearer ")

        with (
            browser(pw, tmp_path / "desk", "Europe/Berlin") as desk_context,
            browser(pw, tmp_path / "carol", "America/New_York") as carol_context,
            browser(pw, tmp_path / "dan", "America/New_York", width=390) as dan_context,
        ):
            # An admin creates the provider and hands over its sign-in token.
            desk = desk_context.new_page()
            desk.goto(f"{base}/")
            screens.shoot(desk, "01-home")
            desk.get_by_role("textbox", name="Access token").fill(admin_token)
            desk.get_by_role("button", name="Sign in").click()
            desk.get_by_label("Name").fill("Dr Ada Lovelace")
            desk.get_by_label("Time zone of its hours").select_option("Europe/Berlin")
            desk.get_by_role("button", name="Create provider").click()
            expect(desk.get_by_role("heading", name="Created Dr Ada Lovelace")).to_be_visible()
            screens.shoot(desk, "09-admin")
            token = desk.get_by_label(re.compile("^Sign-in token")).input_value()
            desk.get_by_role("button", name="Sign out").click()
            (provider,) = http.get("/providers").json()["items"]

            # The provider signs in with it and publishes.
            desk.get_by_role("textbox", name="Access token").fill(token)
            desk.get_by_role("button", name="Sign in").click()
            expect(desk.get_by_role("heading", name="Dr Ada Lovelace")).to_be_visible()
            desk.get_by_label("From date").fill(day.isoformat())
            desk.get_by_label("To date (inclusive)").fill(day.isoformat())
            desk.get_by_label("Daily from").fill("09:00")
            desk.get_by_label("Daily until").fill("12:00")
            for weekday in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
                desk.get_by_label(weekday, exact=True).check()
            desk.get_by_role("button", name="Publish").click()
            expect(desk.get_by_role("status")).to_have_text("Published 12 new slots.")
            assert len(http.get(f"/providers/{provider['id']}/availability").json()["items"]) == 12
            # ... and sells a 45-minute consultation with 15 minutes to tidy up after.
            new_type = desk.get_by_role("form", name="New appointment type")
            new_type.get_by_label("Name").fill("Consultation")
            new_type.get_by_label("Minutes").fill("45")
            new_type.get_by_label("Buffer after").fill("15")
            new_type.get_by_role("button", name="Add type").click()
            expect(desk.get_by_role("status")).to_have_text("Saved “Consultation” (45 min).")
            expect(desk.get_by_role("form", name="Edit Consultation")).to_be_visible()
            desk.get_by_role("heading", name="Appointment types").scroll_into_view_if_needed()
            screens.shoot(desk, "10-provider-types")

            # Two clients sign up and open the same week (the browsers report New York time).
            carol, dan = carol_context.new_page(), dan_context.new_page()
            sign_up(carol, base, "Carol Client", "carol@example.com")
            screens.shoot(carol, "02-providers")
            sign_up(dan, base, "Dan Rival", "dan@example.com")
            week = f"{base}/book?provider={provider['id']}&week={day.isoformat()}"
            for page in (carol, dan):
                page.goto(week)
                expect(
                    page.get_by_text("Times are in your zone, America/New_York.")
                ).to_be_visible()
            screens.shoot(carol, "03-week")
            screens.shoot(dan, "03-week-phone")

            # Carol holds 09:00 Berlin (shown in New York time); the countdown runs.
            carol.get_by_role("button", name=label(nine, NEW_YORK)).click()
            expect(carol.get_by_role("heading", name="Held for you")).to_be_visible()
            countdown = carol.locator("[data-countdown]")
            expect(countdown).to_have_text(re.compile(r"^(29|30):\d\d left$"))
            first = countdown.inner_text()
            expect(countdown).not_to_have_text(first)  # it ticks
            screens.shoot(carol, "04-hold")

            # Dan's page still offers the slot; he clicks it and loses, in plain words.
            dan.get_by_role("button", name=label(nine, NEW_YORK)).click()
            expect(dan.get_by_role("status")).to_have_text(
                "That slot could not be held: the slot is already held or confirmed."
            )
            expect(dan.get_by_role("button", name=label(nine, NEW_YORK))).to_have_count(0)
            screens.shoot(dan, "05-race-lost")
            # He takes the next slot instead and confirms it.
            dan.get_by_role("button", name=label(nine + timedelta(minutes=15), NEW_YORK)).click()
            dan.get_by_role("button", name="Confirm booking").click()
            expect(dan.get_by_role("heading", name="You are booked")).to_be_visible()

            # Carol confirms and downloads her calendar.
            carol.get_by_role("button", name="Confirm booking").click()
            expect(carol.get_by_role("heading", name="You are booked")).to_be_visible()
            screens.shoot(carol, "06-booked")
            link = carol.get_by_role("link", name="Add to calendar (.ics)")
            ics = carol.request.get(f"{base}{link.get_attribute('href')}")
            assert ics.ok
            assert ics.headers["content-type"].startswith("text/calendar")
            (event,) = icalendar.Calendar.from_ical(ics.text()).walk("VEVENT")
            assert event.decoded("DTSTART") == nine.astimezone(UTC)
            assert str(event["SUMMARY"]) == "Appointment with Dr Ada Lovelace"

            # The provider's week shows both bookings; it cancels Dan's.
            desk.goto(f"{base}/provider?week={day.isoformat()}")
            expect(desk.get_by_text("09:00 Carol Client")).to_be_visible()
            expect(desk.get_by_text("09:15 Dan Rival")).to_be_visible()
            screens.shoot(desk, "07-provider-week")
            desk.get_by_role("button", name=re.compile(r"^Cancel .* with Dan Rival$")).click()
            expect(desk.get_by_role("status")).to_have_text(
                "The booking is cancelled; the slot is free again."
            )
            expect(desk.get_by_text("09:15 Dan Rival")).to_have_count(0)

            # Carol sees her booking in My bookings and cancels it.
            carol.get_by_role("link", name="My bookings").first.click()
            expect(carol.get_by_role("heading", name="My bookings")).to_be_visible()
            expect(carol.get_by_text("with Dr Ada Lovelace")).to_be_visible()
            screens.shoot(carol, "08-my-bookings")
            carol.get_by_role("button", name=re.compile(r"^Cancel ")).click()
            expect(carol.get_by_role("status")).to_have_text(
                "The booking is cancelled; the slot is free again."
            )
            expect(carol.get_by_text("No upcoming bookings.")).to_be_visible()

            # Carol books a 45-minute consultation at 10:00 Berlin ...
            carol.goto(week)
            carol.get_by_role("link", name="Consultation (45 min)").click()
            expect(
                carol.get_by_role("heading", name=re.compile("^Consultation, week of"))
            ).to_be_visible()
            # 45 minutes and 15 after must end by 12:00: 09:00 .. 11:00, nine starts.
            expect(carol.get_by_role("button", name=re.compile("^Hold "))).to_have_count(9)
            screens.shoot(carol, "11-type-week")
            ten = nine + timedelta(hours=1)
            carol.get_by_role("button", name=label(ten, NEW_YORK)).click()
            expect(carol.get_by_role("heading", name="Held for you")).to_be_visible()
            local = ten.astimezone(NEW_YORK)
            expect(
                carol.get_by_text(
                    re.compile(f"{local:%H:%M}–{local + timedelta(minutes=45):%H:%M}")
                )
            ).to_be_visible()
            carol.get_by_role("button", name="Confirm booking").click()
            expect(carol.get_by_role("heading", name="You are booked")).to_be_visible()

            # ... and moves it to 11:00 from My bookings.
            carol.get_by_role("link", name="My bookings").first.click()
            carol.get_by_role("link", name=re.compile("^Reschedule ")).click()
            expect(carol.get_by_role("heading", name="Move your booking")).to_be_visible()
            screens.shoot(carol, "12-reschedule")
            eleven = nine + timedelta(hours=2)
            move_label = label(eleven, NEW_YORK).replace("Hold ", "Move to ")
            carol.get_by_role("button", name=move_label).click()
            moved = eleven.astimezone(NEW_YORK)
            expect(carol.get_by_role("status")).to_have_text(f"Moved to {moved:%a %d %b, %H:%M}.")
            expect(
                carol.get_by_text(
                    re.compile(f"{moved:%H:%M}–{moved + timedelta(minutes=45):%H:%M}")
                )
            ).to_be_visible()
            screens.shoot(carol, "13-moved")

    rows = api.sql("SELECT status, start_time, end_time FROM reservations")
    assert sorted(row[0] for row in rows) == ["cancelled", "cancelled", "confirmed"]
    ((_, start, end),) = [row for row in rows if row[0] == "confirmed"]
    as_utc = [
        (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).replace(
            tzinfo=None
        )
        for value in (start, end)
    ]
    eleven_utc = datetime.combine(day, time(11), BERLIN).astimezone(UTC).replace(tzinfo=None)
    assert as_utc == [eleven_utc, eleven_utc + timedelta(minutes=45)]
    # 11:00-12:00 (the appointment and its buffer) confirmed; the other eight free.
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'confirmed'")[0][0] == 4
    assert api.sql("SELECT count(*) FROM slots WHERE status = 'available'")[0][0] == 8


@pytest.mark.live
def test_a_hold_that_runs_out_refreshes_the_page_with_the_reason(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    """The countdown reaches zero, the page reloads itself, the service explains."""
    with (
        live_server(database_url, workers=1, hold_seconds="4") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
        sync_playwright() as pw,
        browser(pw, tmp_path / "erin", "Europe/Berlin") as context,
    ):
        provider, (slot,) = publish_ahead(http, "Dr Brief", timedelta(minutes=15))
        start = datetime.fromisoformat(slot["start_time"])
        page = context.new_page()
        sign_up(page, base, "Erin", "erin@example.com")
        page.goto(f"{base}/book?provider={provider['id']}&week={start.date().isoformat()}")
        page.get_by_role("button", name=label(start, BERLIN)).click()
        expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^0:0[0-4] left$"))

        expect(page.get_by_role("status")).to_have_text(
            "The hold ran out; pick the slot again if it is still free.", timeout=15_000
        )
        assert page.url.startswith(f"{base}/book?provider=")
        expect(page.get_by_role("button", name=label(start, BERLIN))).to_be_visible()
    assert api.sql("SELECT status FROM reservations") == [("held",)]  # not yet swept


@pytest.mark.live
def test_clients_share_a_group_session_and_the_provider_cancels_it(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    screens = Screens.for_test(tmp_path)
    day: date = (datetime.now(BERLIN) + timedelta(days=3)).date()
    nine = datetime.combine(day, time(9), BERLIN)
    with (
        live_server(database_url, workers=2) as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
        sync_playwright() as pw,
    ):
        provider, token = berlin_provider(http)
        offer(http, provider, nine, 2)
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Yoga", "duration_minutes": 60, "capacity": 6},
        ).json()
        with (
            browser(pw, tmp_path / "carol", "Europe/Berlin") as carol_context,
            browser(pw, tmp_path / "desk", "Europe/Berlin") as desk_context,
        ):
            carol = carol_context.new_page()
            sign_up(carol, base, "Carol Client", "carol@example.com")
            carol.goto(f"{base}/book?provider={provider['id']}&type={kind['id']}&week={day}")
            start = carol.get_by_role("button", name=f"{label(nine, BERLIN)}, 6 of 6 seats left")
            expect(start).to_be_visible()
            carol.get_by_label("Seats").first.fill("2")
            screens.shoot(carol, "13-group-week")
            start.click()
            expect(carol.get_by_role("heading", name="Held for you")).to_be_visible()
            expect(carol.get_by_text("group session: 2 seats")).to_be_visible()
            carol.get_by_role("button", name="Confirm booking").click()
            expect(carol.get_by_role("heading", name="You are booked")).to_be_visible()
            # Another client joins through the API; the week shows what is left.
            dan = http.post("/clients", json={"name": "Dan", "email": "dan@example.com"}).json()
            first_slot = http.get(f"/providers/{provider['id']}/availability?status=all").json()
            http.post(
                f"/clients/{dan['id']}/reserve",
                json={"slot_id": first_slot["items"][0]["id"], "appointment_type_id": kind["id"]},
            ).raise_for_status()
            carol.goto(f"{base}/book?provider={provider['id']}&type={kind['id']}&week={day}")
            expect(
                carol.get_by_role("button", name=f"{label(nine, BERLIN)}, 3 of 6 seats left")
            ).to_be_visible()

            # The provider sees one session with both clients and cancels it whole.
            desk = desk_context.new_page()
            sign_in(desk, base, token)
            desk.goto(f"{base}/provider?week={day}")
            expect(desk.get_by_text("Group session: Carol Client, Dan")).to_be_visible()
            screens.shoot(desk, "14-provider-session")
            desk.get_by_role("button", name=re.compile("^Cancel the group session")).click()
            expect(desk.get_by_role("status")).to_have_text("Cancelled the session (2 bookings).")
            expect(desk.get_by_text("Group session: Carol Client, Dan")).to_have_count(0)
    assert api.sql("SELECT count(*) FROM reservations WHERE status = 'cancelled'") == [(2,)]


@pytest.mark.live
def test_a_client_books_a_weekly_series_with_a_week_explained_and_sees_it_grouped(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    screens = Screens.for_test(tmp_path)
    day: date = (datetime.now(BERLIN) + timedelta(days=3)).date()
    with (
        live_server(database_url, workers=2) as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
        sync_playwright() as pw,
    ):
        provider, _ = berlin_provider(http)
        # 10:00-11:00 on four weeks' same weekday, but not the third.
        for week in (0, 1, 3):
            offer(
                http, provider, datetime.combine(day + timedelta(weeks=week), time(10), BERLIN), 1
            )
        ten = datetime.combine(day, time(10), BERLIN)
        with browser(pw, tmp_path / "carol", "Europe/Berlin") as context:
            carol = context.new_page()
            sign_up(carol, base, "Carol Client", "carol@example.com")
            carol.goto(f"{base}/book?provider={provider['id']}&week={day}")
            carol.get_by_label("Repeat").first.select_option("4")
            carol.get_by_role("button", name=label(ten, BERLIN)).click()
            # Before confirming: three weeks held, the third explained.
            expect(carol.get_by_role("heading", name="Held for you, every week")).to_be_visible()
            third = day + timedelta(weeks=2)
            expect(carol.get_by_role("status")).to_contain_text(
                f"1 of 4 weeks cannot be booked: {third:%a} {third.day} {third:%b}: "
                "taken, or not offered"
            )
            expect(carol.get_by_text("3 of 4 weeks with Dr Ada Lovelace")).to_be_visible()
            screens.shoot(carol, "15-series-hold")
            carol.get_by_role("button", name="Confirm 3 weeks").click()
            expect(carol.get_by_role("status")).to_have_text("Booked 3 weeks. See you then.")
            expect(carol.get_by_text(f"{ten:%A}s at 10:00, a series")).to_be_visible()
            carol.get_by_text("The 3 dates").click()
            screens.shoot(carol, "16-my-series")
    rows = api.sql("SELECT status, count(*) FROM reservations GROUP BY status")
    assert rows == [("confirmed", 3)]


@pytest.mark.live
def test_a_provider_sets_a_standing_week_a_closed_date_and_time_off(
    database_url: str, api: Api, tmp_path: Path
) -> None:
    screens = Screens.for_test(tmp_path)
    today = datetime.now(BERLIN).date()
    closed = today + timedelta(days=(3 - today.weekday()) % 7 + 7)  # a Thursday ahead
    with (
        live_server(database_url, workers=2) as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
        sync_playwright() as pw,
    ):
        provider, token = berlin_provider(http)
        with browser(pw, tmp_path / "desk", "Europe/Berlin") as context:
            desk = context.new_page()
            sign_in(desk, base, token)
            desk.get_by_role("link", name="Weekly hours, dates and time off").click()
            expect(desk.get_by_role("heading", name="My standing week")).to_be_visible()
            # Monday to Friday 9 to 5 is offered; Friday ends at 13:00 here.
            desk.get_by_label("Fri until").fill("13:00")
            desk.get_by_label("Days ahead to publish").fill("30")
            desk.get_by_role("button", name="Save weekly hours").click()
            expect(desk.get_by_role("status")).to_contain_text("Weekly hours saved:")
            # One Thursday closed, on the month view.
            desk.get_by_label("Date", exact=True).fill(closed.isoformat())
            desk.get_by_label("Closed all day").check()
            desk.get_by_role("button", name="Set this date").click()
            expect(desk.get_by_role("status")).to_contain_text(f"Closed on {closed.isoformat()}")
            label = f"{closed:%a} {closed.day} {closed:%b}: closed (override)"
            expect(desk.get_by_label(label)).to_be_visible()
            # Two days off the week after.
            start = closed + timedelta(days=4)
            desk.get_by_label("From", exact=True).last.fill(f"{start.isoformat()}T00:00")
            desk.get_by_label("Until", exact=True).last.fill(
                f"{(start + timedelta(days=2)).isoformat()}T00:00"
            )
            desk.get_by_label("Reason").fill("Conference")
            desk.get_by_role("button", name="Add time off").click()
            expect(desk.get_by_role("status")).to_contain_text("Time off added:")
            expect(desk.get_by_text("Conference")).to_be_visible()
            screens.shoot(desk, "17-standing-week")
            # The week shows the hours at once.
            desk.goto(f"{base}/provider?week={closed.isoformat()}")
            expect(desk.get_by_text("Open 09:00–17:00")).to_have_count(3)
            expect(desk.get_by_text("Open 09:00–13:00")).to_have_count(1)
            screens.shoot(desk, "18-provider-week-open")
    rows = api.sql("SELECT count(*) FROM time_off")
    assert rows == [(1,)]


@pytest.mark.live
def test_a_provider_connects_its_other_calendar_and_sees_its_busy_time(
    database_url: str, api: Api, tmp_path: Path, caldav_server: Radicale
) -> None:
    screens = Screens.for_test(tmp_path)
    feeds = Feeds()
    threading.Thread(target=feeds.server.serve_forever, daemon=True).start()
    day: date = (datetime.now(BERLIN) + timedelta(days=3)).date()
    nine = datetime.combine(day, time(9), BERLIN)
    stamp = "%Y%m%dT%H%M%SZ"
    busy = feed(
        event(
            "meeting@elsewhere",
            f"{nine.astimezone(UTC):{stamp}}",
            f"{(nine + timedelta(minutes=30)).astimezone(UTC):{stamp}}",
        )
    )
    url = feeds.serve("/ada.ics", busy)
    caldav = caldav_server.make_calendar()
    user, password = caldav_server.auth
    try:
        with (
            live_server(
                database_url,
                workers=2,
                secrets_key=Fernet.generate_key().decode(),
                delivery_interval_seconds="0.2",
            ) as base,
            httpx.Client(base_url=base, headers=ADMIN) as http,
            sync_playwright() as pw,
        ):
            provider, token = berlin_provider(http)
            offer(http, provider, nine, 1)
            with browser(pw, tmp_path / "desk", "Europe/Berlin") as context:
                desk = context.new_page()
                sign_in(desk, base, token)
                desk.goto(f"{base}/provider/schedule")
                desk.get_by_label("Calendar address").fill(url)
                desk.get_by_role("button", name="Connect", exact=True).click()
                expect(desk.get_by_role("status")).to_have_text(
                    "Calendar connected: it is being read now."
                )
                # And a CalDAV calendar that takes the bookings made here.
                desk.get_by_label("Kind").select_option("caldav")
                desk.get_by_label("Calendar address").fill(caldav)
                desk.get_by_label("User name").fill(user)
                desk.get_by_label("Password").fill(password)
                desk.get_by_label("Write my bookings into it").check()
                desk.get_by_role("button", name="Connect", exact=True).click()
                expect(desk.get_by_role("status")).to_have_text(
                    "Calendar connected: it is being read now."
                )
                for _ in range(50):  # the reads run in the server's background
                    if (
                        desk.get_by_text("1 busy stretch").count()
                        and desk.get_by_text("0 busy stretches").count()
                    ):
                        break
                    desk.wait_for_timeout(100)
                    desk.reload()
                expect(desk.get_by_text("1 busy stretch")).to_be_visible()
                expect(desk.get_by_text("bookings written here")).to_be_visible()
                screens.shoot(desk, "19-other-calendar")
            slots = http.get(f"/providers/{provider['id']}/availability?status=all").json()
            assert [s["status"] for s in slots["items"]] == ["busy", "busy"] + ["available"] * 2
            # A booking confirmed now appears in the CalDAV calendar, written by the
            # service's own delivery worker.
            client = http.post("/clients", json={"name": "Bob", "email": "bob@example.com"})
            bob = client.json()["id"]
            free = slots["items"][2]["id"]
            held = http.post(f"/clients/{bob}/reserve", json={"slot_id": free}).json()
            confirmed = http.post(f"/clients/{bob}/confirm", json={"reservation_id": held["id"]})
            assert confirmed.status_code == 200, confirmed.text
            for _ in range(100):
                if caldav_server.names(caldav):
                    break
                sleep(0.1)
            assert caldav_server.names(caldav) == [f"{held['id']}.ics"]
    finally:
        feeds.server.shutdown()
