"""The booking pages through HTTP as a browser uses them: forms, redirects, cookies."""

import re
from collections.abc import Callable
from datetime import timedelta

import icalendar
from prometheus_client import REGISTRY

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from tests.api import Api, bearer
from tests.conftest import START
from tests.web.browser import Browser

DAY = START + timedelta(days=3)  # Thursday 4 March 2027, 08:00 UTC
SLOT_BUTTON = re.compile(r'name="slot_id" value="([0-9a-f-]+)"')


def slot_ids(page: str) -> list[str]:
    return SLOT_BUTTON.findall(page)


def week_page(browser: Browser, provider_id: str) -> str:
    response = browser.get(f"/book?provider={provider_id}&week=2027-03-04&tz=UTC")
    assert response.status_code == 200
    return response.text


def test_sign_up_sets_a_protected_session_cookie(api: Api, browser: Browser) -> None:
    response = browser.submit("/signup", {"name": "Carol", "email": "carol@example.com"})
    assert response.status_code == 200
    assert response.url.path == "/book"
    assert "Welcome, Carol" in response.text
    cookie = response.history[0].headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert api.sql("SELECT name, email FROM clients") == [("Carol", "carol@example.com")]


def test_sign_up_refuses_bad_input_and_creates_nothing(api: Api, browser: Browser) -> None:
    response = browser.submit("/signup", {"name": "Carol", "email": "not an email"})
    assert response.status_code == 422
    assert "email" in response.text
    assert api.sql("SELECT count(*) FROM clients")[0][0] == 0


def test_forms_without_the_sessions_csrf_token_are_refused(
    api: Api, browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    browser.get("/")
    missing = browser.client.post("/signup", data={"name": "Eve", "email": "eve@example.com"})
    forged = browser.client.post(
        "/signup", data={"name": "Eve", "email": "eve@example.com", "csrf_token": "guess"}
    )
    other = new_browser()  # someone else's valid token is not ours
    stolen = browser.client.post(
        "/signup", data={"name": "Eve", "email": "eve@example.com", "csrf_token": other.csrf()}
    )
    cross_site = browser.client.post(
        "/signup",
        data={"name": "Eve", "email": "eve@example.com", "csrf_token": browser.csrf()},
        headers={"Origin": "https://evil.example"},
    )
    for response in (missing, forged, stolen, cross_site):
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
    assert api.sql("SELECT count(*) FROM clients")[0][0] == 0


def test_a_tampered_cookie_signs_nobody_in(browser: Browser) -> None:
    browser.sign_up()
    cookie = browser.client.cookies["appointments_session"]
    browser.client.cookies.set("appointments_session", cookie[:-3] + "AAA")
    response = browser.get("/bookings")
    assert response.status_code == 401


def test_client_books_confirms_downloads_and_cancels(
    api: Api, browser: Browser, clock: FrozenClock
) -> None:
    provider = api.provider("Dr Ada", timezone="Europe/Berlin")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    browser.sign_up()

    providers_page = browser.get("/book").text
    assert "Dr Ada" in providers_page
    page = week_page(browser, provider["id"])
    assert "Europe/Berlin" in page
    slots = slot_ids(page)
    assert len(slots) == 4
    assert 'aria-label="Hold Thu 4 Mar 2027, 08:00"' in page

    held = browser.submit(
        "/book/hold", {"slot_id": slots[0], "provider": provider["id"]}, from_page="/book"
    )
    assert held.status_code == 200
    assert held.url.path.startswith("/book/holds/")
    assert "Held for you" in held.text
    assert 'data-seconds="1800"' in held.text
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    assert slots[0] not in slot_ids(week_page(browser, provider["id"]))

    confirmed = browser.submit(held.url.path + "/confirm", from_page=held.url.path)
    assert confirmed.status_code == 200
    assert "You are booked" in confirmed.text
    assert api.sql("SELECT status FROM reservations") == [("confirmed",)]

    calendar = browser.get("/bookings/calendar.ics")
    assert calendar.headers["content-type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(calendar.text).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["Appointment with Dr Ada"]

    mine = browser.get("/bookings").text
    assert "Thu 4 Mar 2027, 08:00" in mine
    reservation_id = confirmed.url.path.rsplit("/", 1)[1]
    cancelled = browser.submit(f"/bookings/{reservation_id}/cancel", from_page="/bookings")
    assert "cancelled" in cancelled.text
    assert api.sql("SELECT status FROM reservations") == [("cancelled",)]
    assert slots[0] in slot_ids(week_page(browser, provider["id"]))


def test_losing_the_race_for_a_slot_shows_the_services_message(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider = api.provider()
    slot = api.slot(provider["id"], DAY)
    first, second = new_browser(), new_browser()
    first.sign_up("Carol", "carol@example.com")
    second.sign_up("Dan", "dan@example.com")
    assert slot_ids(week_page(second, provider["id"])) == [slot["id"]]

    assert first.submit("/book/hold", {"slot_id": slot["id"]}, from_page="/book").status_code == 200
    lost = second.submit(
        "/book/hold", {"slot_id": slot["id"], "provider": provider["id"]}, from_page="/book"
    )
    assert lost.status_code == 200
    assert "That slot could not be held: the slot is already held or confirmed." in lost.text
    assert slot_ids(lost.text) == []  # the refreshed week no longer offers it
    assert api.live_reservations(slot["id"]) == 1


def test_too_late_and_expired_holds_are_explained(
    api: Api, browser: Browser, clock: FrozenClock
) -> None:
    provider = api.provider()
    soon = api.slot(provider["id"], START + timedelta(hours=25))
    later = api.slot(provider["id"], DAY)
    browser.sign_up()
    held = browser.submit("/book/hold", {"slot_id": later["id"]}, from_page="/book")
    hold_path = held.url.path

    clock.advance(hours=2)  # past the first slot's notice and the hold's 30 minutes
    late = browser.submit("/book/hold", {"slot_id": soon["id"]}, from_page="/book")
    assert "only when it starts more than 24 hours from now" in late.text
    expired = browser.get(hold_path)
    assert expired.url.path == "/book"
    assert "The hold ran out" in expired.text
    refused = browser.submit(hold_path + "/confirm", from_page="/book")
    assert "the hold ran out" in refused.text
    assert api.sql("SELECT count(*) FROM reservations WHERE status = 'confirmed'")[0][0] == 0


def test_times_show_in_the_viewers_zone(api: Api, browser: Browser) -> None:
    provider = api.provider(timezone="Europe/Berlin")
    api.slot(provider["id"], DAY)
    browser.sign_up()
    page = browser.get(f"/book?provider={provider['id']}&week=2027-03-04&tz=America/New_York")
    assert 'aria-label="Hold Thu 4 Mar 2027, 03:00"' in page.text
    assert "your zone, America/New_York" in page.text
    # The choice sticks for the next page, UTC too; an unknown zone changes nothing.
    assert 'data-tz="America/New_York"' in browser.get("/bookings").text
    browser.get("/bookings?tz=UTC")
    assert browser.client.cookies["tz"] == "UTC"
    browser.get("/bookings?tz=Mars/Base")
    assert browser.client.cookies["tz"] == "UTC"


def test_provider_signs_in_publishes_sees_and_cancels_bookings(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider = api.provider("Dr Ada", timezone="Europe/Berlin")
    desk = new_browser()
    signed_in = desk.sign_in(bearer(Role.PROVIDER, provider["id"])["Authorization"][7:])
    assert signed_in.url.path == "/provider"
    published = desk.submit(
        "/provider/publish",
        {
            "start_date": "2027-03-04",
            "end_date": "2027-03-05",
            "start": "09:00",
            "end": "10:00",
            "weekday": ["thu", "fri"],
        },
        from_page="/provider",
    )
    assert "Published 8 new slots." in published.text
    starts = api.slots(provider["id"])
    assert [s["start_time"] for s in starts[:1]] == ["2027-03-04T08:00:00Z"]  # 09:00 Berlin

    client = new_browser()
    client.sign_up()
    held = client.submit("/book/hold", {"slot_id": starts[0]["id"]}, from_page="/book")
    client.submit(held.url.path + "/confirm", from_page=held.url.path)

    week = desk.get("/provider?week=2027-03-04&tz=Europe/Berlin").text
    assert "09:00 Carol" in week
    reservation_id = held.url.path.rsplit("/", 1)[1]
    cancelled = desk.submit(f"/provider/bookings/{reservation_id}/cancel", from_page="/provider")
    assert "The booking is cancelled" in cancelled.text
    assert api.sql("SELECT status FROM reservations") == [("cancelled",)]


def test_pages_apply_the_apis_rules(api: Api, new_browser: Callable[[], Browser]) -> None:
    provider = api.provider()
    slot = api.slot(provider["id"], DAY)
    anonymous, carol, dan = new_browser(), new_browser(), new_browser()
    carol.sign_up("Carol", "carol@example.com")
    dan.sign_up("Dan", "dan@example.com")
    held = carol.submit("/book/hold", {"slot_id": slot["id"]}, from_page="/book")

    assert anonymous.get("/bookings").status_code == 401
    assert anonymous.get("/book").status_code == 401
    assert carol.get("/provider").status_code == 403
    assert dan.get(held.url.path).status_code == 404
    taken = dan.submit(held.url.path + "/confirm", from_page="/book")
    assert "does not exist" in taken.text
    cancel = dan.submit(f"{held.url.path.replace('/book/holds', '/bookings')}/cancel")
    assert "Nothing was cancelled" in cancel.text
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    unknown = new_browser().sign_in(bearer(Role.CLIENT, provider["id"])["Authorization"][7:])
    assert unknown.status_code == 404


def test_an_identity_providers_bearer_token_works_on_the_pages(api: Api, browser: Browser) -> None:
    customer = api.customer()
    response = browser.get("/bookings", headers=bearer(Role.CLIENT, customer["id"]))
    assert response.status_code == 200
    assert "My bookings" in response.text
    bad = browser.get("/bookings", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401


def test_assets_ship_with_the_package(browser: Browser) -> None:
    for path, kind in (("/static/app.css", "text/css"), ("/static/app.js", "javascript")):
        response = browser.get(path)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    home = browser.get("/").text
    assert "http://" not in home.replace("http://testserver", "")
    assert "https://" not in home


def test_pages_forbid_framing_and_foreign_content(browser: Browser) -> None:
    for path in ("/", "/book"):
        headers = browser.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


def test_the_provider_list_pages_on(api: Api, browser: Browser) -> None:
    names = {f"Dr {number:03d}" for number in range(101)}
    for name in names:
        api.provider(name)
    browser.sign_up()
    shown = re.compile(r">(Dr \d{3})</a>")
    first = browser.get("/book").text
    more = re.search(r'href="(/book\?cursor=[^"]+)"', first)
    assert more is not None
    second = browser.get(more.group(1)).text
    assert len(shown.findall(first)) == 100
    assert len(shown.findall(second)) == 1
    assert set(shown.findall(first)) | set(shown.findall(second)) == names
    assert "More providers" not in second
    assert browser.get("/book?cursor=garbage").status_code == 422


def admin_token() -> str:
    return bearer(Role.ADMIN, "web-admin")["Authorization"].removeprefix("Bearer ")


def test_an_admin_creates_a_provider_and_hands_over_its_sign_in_token(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    desk = new_browser()
    assert desk.sign_in(admin_token()).url.path == "/manage"
    created = desk.submit(
        "/manage/providers",
        {"name": "Dr Grace", "timezone": "America/New_York", "email": ""},
        from_page="/manage",
    )
    assert created.status_code == 201
    assert api.sql("SELECT name, timezone, email FROM providers") == [
        ("Dr Grace", "America/New_York", None)
    ]
    token = re.search(r'id="sign-in-token"[^>]*>([^<]+)<', created.text)
    assert token is not None
    provider = new_browser()
    assert provider.sign_in(token.group(1).strip()).url.path == "/provider"
    assert "Dr Grace" in provider.get("/provider").text


def test_the_admin_page_refuses_bad_input_and_non_admins(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    desk = new_browser()
    desk.sign_in(admin_token())
    for form in ({"name": "", "timezone": "UTC"}, {"name": "Dr X", "timezone": "Mars/Base"}):
        refused = desk.submit("/manage/providers", form, from_page="/manage")
        assert refused.status_code == 422
        assert 'role="alert"' in refused.text
    assert api.sql("SELECT count(*) FROM providers")[0][0] == 0

    client = new_browser()
    client.sign_up()
    assert client.get("/manage").status_code == 403
    assert new_browser().get("/manage").status_code == 401
    forged = client.submit("/manage/providers", {"name": "Dr Eve"}, from_page="/bookings")
    assert forged.status_code == 403
    assert api.sql("SELECT count(*) FROM providers")[0][0] == 0


FORM_ID = re.compile(r'name="form_id" value="([A-Za-z0-9_-]+)"')


def test_a_page_form_sent_twice_holds_and_confirms_once_through_the_api_s_path(
    api: Api, browser: Browser
) -> None:
    """The pages call the API's reserve and confirm: the form's key replays a resubmitted
    form, and the outcomes are counted as the API's are."""
    provider = api.provider("Dr Ada")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    browser.sign_up()
    page = week_page(browser, provider["id"])
    (form_id, *_) = FORM_ID.findall(page)
    slot = slot_ids(page)[0]
    held_before = (
        REGISTRY.get_sample_value("appointments_reservations_total", {"outcome": "held"}) or 0.0
    )
    form = {"slot_id": slot, "provider": provider["id"], "form_id": form_id}
    first = browser.submit("/book/hold", form, from_page="/book")
    again = browser.submit("/book/hold", form, from_page="/book")
    assert first.url.path.startswith("/book/holds/")
    assert again.url.path == first.url.path  # the stored answer, not "already held"
    assert api.sql("SELECT count(*) FROM reservations") == [(1,)]
    assert api.sql("SELECT operation FROM idempotency_keys") == [("reserve",)]
    held_after = REGISTRY.get_sample_value("appointments_reservations_total", {"outcome": "held"})
    assert held_after == held_before + 1
    # The same form for another slot is a new choice, not a reuse of the key.
    other = browser.submit("/book/hold", form | {"slot_id": slot_ids(page)[1]}, from_page="/book")
    assert other.url.path.startswith("/book/holds/")
    assert other.url.path != first.url.path

    hold_page = browser.get(first.url.path).text
    (confirm_form,) = FORM_ID.findall(hold_page)[:1]
    for _ in range(2):
        confirmed = browser.submit(
            first.url.path + "/confirm", {"form_id": confirm_form}, from_page=first.url.path
        )
        assert "You are booked" in confirmed.text
    rows = api.sql("SELECT operation, status_code FROM idempotency_keys ORDER BY operation")
    assert rows == [("confirm", 200), ("reserve", 201), ("reserve", 201)]
