"""A weekly series through the client's pages: held with the weeks that cannot be
booked explained before confirming, confirmed at once, grouped in My bookings,
cancelled whole."""

import re
from datetime import timedelta

from tests.api import Api
from tests.conftest import START
from tests.web.browser import Browser
from tests.web.test_flow import slot_ids, week_page

DAY = START + timedelta(days=3)  # Thursday 4 March 2027, 08:00 UTC
WEEK = timedelta(weeks=1)


def test_a_weekly_series_is_explained_confirmed_grouped_and_cancelled(
    api: Api, browser: Browser
) -> None:
    provider = api.provider("Dr Weekly", timezone="UTC")
    for week in range(3):
        api.publish(provider["id"], DAY + week * WEEK, DAY + week * WEEK + timedelta(hours=1))
    # The second Thursday's 08:00 is someone else's.
    rival = api.customer("Eve", "eve@example.com")
    assert api.reserve(rival["id"], api.slot_at(provider["id"], DAY + WEEK)).status_code == 201
    browser.sign_up()
    page = week_page(browser, provider["id"])
    assert 'name="weeks"' in page
    assert "Every week for 3 weeks" in page

    held = browser.submit(
        "/book/hold",
        {"slot_id": slot_ids(page)[0], "provider": provider["id"], "weeks": "3"},
        from_page="/book",
    )
    assert held.status_code == 200, held.text
    assert held.url.path.startswith("/book/series/")
    # Before confirming: which weeks are held, which are not, and why.
    assert "2 of 3 weeks" in held.text
    assert "1 of 3 weeks cannot be booked: Thu 11 Mar: taken, or not offered" in held.text
    assert held.text.count(">held<") == 2
    assert ">not booked<" in held.text
    assert "Confirm 2 weeks" in held.text
    mine = "SELECT start_time, status FROM reservations WHERE series_id IS NOT NULL ORDER BY 1"
    assert [status for _, status in api.sql(mine)] == ["held", "held"]

    confirmed = browser.submit(held.url.path + "/confirm", from_page=held.url.path)
    assert confirmed.url.path == "/bookings"
    assert "Booked 2 weeks" in confirmed.text
    assert [status for _, status in api.sql(mine)] == ["confirmed", "confirmed"]
    # My bookings: the series as one line, its dates inside.
    assert "Thursdays at 08:00, a series" in confirmed.text
    assert "2 upcoming, next Thu 4 Mar 2027, 08:00" in confirmed.text
    assert "Thu 18 Mar 2027, 08:00" in confirmed.text
    # The series page of a confirmed series is My bookings.
    assert browser.get(held.url.path).url.path == "/bookings"

    series_id = held.url.path.rsplit("/", 1)[1]
    cancelled = browser.submit(f"/bookings/series/{series_id}/cancel", from_page="/bookings")
    assert "Series cancelled." in cancelled.text
    assert [status for _, status in api.sql(mine)] == ["cancelled", "cancelled"]
    assert "a series" not in cancelled.text


def test_a_series_holds_the_weeks_that_pass_or_nothing_when_none_does(
    api: Api, browser: Browser
) -> None:
    provider = api.provider("Dr Once", timezone="UTC")
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))  # no later weeks
    browser.sign_up()
    page = week_page(browser, provider["id"])
    answer = browser.submit(
        "/book/hold",
        {"slot_id": slot_ids(page)[0], "provider": provider["id"], "weeks": "2"},
        from_page="/book",
    )
    # The first week passes, the second has no slot: the week that passes is held.
    assert answer.url.path.startswith("/book/series/"), answer.text
    assert "1 of 2 weeks cannot be booked: Thu 11 Mar: taken, or not offered" in answer.text
    # A week count the form does not offer is refused like any bad form value.
    refused = browser.submit(
        "/book/hold",
        {"slot_id": slot_ids(page)[1], "provider": provider["id"], "weeks": "53"},
        from_page="/book",
    )
    assert refused.status_code == 422
    assert api.sql("SELECT count(*) FROM reservations") == [(1,)]
    # No week passes (this one is taken, the next has no slot): nothing is held, and the
    # week page says why.
    taken = slot_ids(page)[2]
    assert api.reserve(api.customer("Eve", "eve@example.com")["id"], taken).status_code == 201
    none = browser.submit(
        "/book/hold",
        {"slot_id": taken, "provider": provider["id"], "weeks": "2"},
        from_page="/book",
    )
    assert none.url.path == "/book"
    assert "Those weeks could not be held" in none.text, re.findall(r"flash[^<]*", none.text)
    assert "Thu 4 Mar: taken, or not offered; Thu 11 Mar: taken, or not offered" in none.text, (
        re.findall(r"flash[^<]*", none.text)
    )
    assert api.sql("SELECT count(*) FROM reservations") == [(2,)]
