"""The provider's standing week through its pages: weekly hours, a date override on the
month view, time off; the result in the week at once, refusals in words."""

from collections.abc import Callable

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.web.browser import Browser

WEEKLY = {
    "horizon_days": "14",
    "open": ["mon", "tue", "wed", "thu", "fri"],
    **{f"{day}_start": "09:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    **{f"{day}_end": "17:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}


def test_the_provider_sets_hours_a_date_and_time_off_and_sees_them_at_once(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider = api.provider("Dr Ada", timezone="Europe/Berlin")
    desk = new_browser()
    desk.sign_in(bearer(Role.PROVIDER, provider["id"])["Authorization"][7:])
    page = desk.get("/provider/schedule?tz=Europe/Berlin").text
    assert "Weekly hours" in page
    assert 'name="mon_start" value="09:00"' in page  # a first schedule, ready to edit

    saved = desk.submit("/provider/schedule", WEEKLY, from_page="/provider/schedule")
    assert "Weekly hours saved: 352 slots published." in saved.text  # 11 weekdays x 32
    week = desk.get("/provider?week=2027-03-01").text
    assert week.count("Open 09:00–17:00") == 5
    assert api.ok("GET", f"/providers/{provider['id']}/schedule")["horizon_days"] == 14

    # A date closed on the month view.
    closed = desk.submit(
        "/provider/schedule/overrides",
        {"day": "2027-03-04", "closed": "true", "start": "", "end": ""},
        from_page="/provider/schedule",
    )
    assert "Closed on 2027-03-04: 0 slots published, 32 withdrawn." in closed.text
    assert 'aria-label="Thu 4 Mar: closed (override)"' in closed.text
    assert desk.get("/provider?week=2027-03-01").text.count("Open 09:00–17:00") == 4

    # Time off over two days, then back.
    away = desk.submit(
        "/provider/time-off",
        {"start": "2027-03-08T00:00", "end": "2027-03-10T00:00", "reason": "Course"},
        from_page="/provider/schedule",
    )
    assert "Time off added: 0 slots published, 64 withdrawn." in away.text
    assert "Course" in away.text
    [entry] = api.ok("GET", f"/providers/{provider['id']}/time-off")["items"]
    assert entry["start_time"] == "2027-03-07T23:00:00Z"  # midnight in Berlin
    back = desk.submit(
        f"/provider/time-off/{entry['id']}/delete", {}, from_page="/provider/schedule"
    )
    assert "Time off removed: 64 slots published." in back.text

    # A booking in the way: nothing changes, and the page says why.
    client = api.customer()
    slot = api.slots(provider["id"], status="all", **{"from": "2027-03-05T10:00:00Z"})[0]
    assert api.reserve(client["id"], slot["id"]).status_code == 201
    refused = desk.submit(
        "/provider/schedule/overrides",
        {"day": slot["start_time"][:10], "closed": "true"},
        from_page="/provider/schedule",
    )
    assert "Nothing was changed: 1 held or confirmed booking(s) would be dropped" in refused.text
    moved = desk.submit(
        "/provider/schedule/overrides",
        {"day": slot["start_time"][:10], "closed": "true", "on_conflict": "move"},
        from_page="/provider/schedule",
    )
    assert "1 booking(s) moved" in moved.text


def test_bad_forms_change_nothing(api: Api, new_browser: Callable[[], Browser]) -> None:
    provider = api.provider("Dr Ada", timezone="Europe/Berlin")
    desk = new_browser()
    desk.sign_in(bearer(Role.PROVIDER, provider["id"])["Authorization"][7:])
    backwards = {**WEEKLY, "mon_start": "17:00", "mon_end": "09:00"}
    answer = desk.submit("/provider/schedule", backwards, from_page="/provider/schedule")
    assert "Nothing was changed: an interval&#39;s end must be after its start" in answer.text
    too_far = desk.submit(
        "/provider/schedule", {**WEEKLY, "horizon_days": "999"}, from_page="/provider/schedule"
    )
    assert too_far.status_code == 422
    reversed_off = desk.submit(
        "/provider/time-off",
        {"start": "2027-03-10T00:00", "end": "2027-03-08T00:00"},
        from_page="/provider/schedule",
    )
    assert "Nothing was changed: end_time must be after start_time" in reversed_off.text
    assert api.sql("SELECT count(*) FROM slots") == [(0,)]
    assert api.sql("SELECT count(*) FROM schedules") == [(0,)]
    # A client may not see it.
    client = new_browser()
    client.sign_up()
    assert client.get("/provider/schedule").status_code == 403
