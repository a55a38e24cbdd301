"""Appointment types on the pages: the provider manages them, a client books a
45-minute appointment and moves it from "My bookings"."""

import re
from collections.abc import Callable
from datetime import timedelta

from appointments.auth.tokens import Role
from tests.api import Api, bearer, iso
from tests.conftest import START
from tests.web.browser import Browser

DAY = START + timedelta(days=3)  # Thursday 4 March 2027
NINE = DAY.replace(hour=9)
SLOT_BUTTON = re.compile(r'name="slot_id" value="([0-9a-f-]+)"')
TYPE_FORM = {
    "name": "Consultation",
    "duration_minutes": "45",
    "buffer_before_minutes": "0",
    "buffer_after_minutes": "15",
    "max_per_day": "",
    "change_notice_minutes": "0",
    "max_advance_days": "",
}


def provider_desk(api: Api, new_browser: Callable[[], Browser]) -> tuple[str, Browser]:
    provider = api.provider("Dr Ada")
    api.publish(provider["id"], NINE, NINE + timedelta(hours=2))
    desk = new_browser()
    token = bearer(Role.PROVIDER, provider["id"])["Authorization"].removeprefix("Bearer ")
    assert desk.sign_in(token).status_code == 200
    return provider["id"], desk


def test_a_provider_creates_edits_and_deletes_types_on_its_page(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    created = desk.submit("/provider/types", TYPE_FORM, from_page="/provider")
    assert "Saved “Consultation” (45 min)." in created.text
    (kind,) = api.ok("GET", f"/providers/{provider_id}/appointment-types")["items"]
    assert (kind["duration_minutes"], kind["buffer_after_minutes"]) == (45, 15)
    assert kind["max_per_day"] is None

    refused = desk.submit(
        f"/provider/types/{kind['id']}",
        TYPE_FORM | {"duration_minutes": "50"},
        from_page="/provider",
    )
    assert "Nothing was saved: duration_minutes must be a multiple" in refused.text
    edited = desk.submit(
        f"/provider/types/{kind['id']}",
        TYPE_FORM | {"name": "Long visit", "duration_minutes": "60", "max_per_day": "4"},
        from_page="/provider",
    )
    assert "Saved “Long visit” (60 min)." in edited.text
    kind = api.ok("GET", f"/providers/{provider_id}/appointment-types/{kind['id']}")
    assert (kind["name"], kind["duration_minutes"], kind["max_per_day"]) == ("Long visit", 60, 4)

    deleted = desk.submit(f"/provider/types/{kind['id']}/delete", from_page="/provider")
    assert "The appointment type is deleted" in deleted.text
    assert api.ok("GET", f"/providers/{provider_id}/appointment-types")["items"] == []


def test_a_client_books_45_minutes_and_moves_it(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    desk.submit("/provider/types", TYPE_FORM, from_page="/provider")
    (kind,) = api.ok("GET", f"/providers/{provider_id}/appointment-types")["items"]
    carol = new_browser()
    carol.sign_up()

    plain = carol.get(f"/book?provider={provider_id}&week=2027-03-04&tz=UTC").text
    assert "Consultation (45 min)" in plain
    assert len(SLOT_BUTTON.findall(plain)) == 8  # every single slot of 09:00-11:00
    typed_url = f"/book?provider={provider_id}&type={kind['id']}&week=2027-03-04&tz=UTC"
    typed = carol.get(typed_url).text
    starts = SLOT_BUTTON.findall(typed)
    assert len(starts) == 5  # 09:00 .. 10:00: 45 minutes and 15 after must end by 11:00
    assert starts[0] == api.slot_at(provider_id, NINE)

    held = carol.submit(
        "/book/hold", {"slot_id": starts[0], "appointment_type_id": kind["id"]}, from_page=typed_url
    )
    assert held.url.path.startswith("/book/holds/")
    assert "09:00–09:45" in held.text
    reservation_id = held.url.path.rsplit("/", 1)[1]
    carol.submit(f"/book/holds/{reservation_id}/confirm", from_page=held.url.path)

    bookings = carol.get("/bookings").text
    assert "09:00–09:45" in bookings
    assert f"/bookings/{reservation_id}/reschedule" in bookings
    moving = carol.get(f"/bookings/{reservation_id}/reschedule?tz=UTC").text
    offered = SLOT_BUTTON.findall(moving)
    # Its own slots count for itself: 09:15 .. 10:00 are offered, 09:00 (where it is) not.
    assert offered == [
        api.slot_at(provider_id, NINE + timedelta(minutes=m)) for m in (15, 30, 45, 60)
    ]
    moved = carol.submit(
        f"/bookings/{reservation_id}/reschedule",
        {"slot_id": offered[-1]},
        from_page=f"/bookings/{reservation_id}/reschedule",
    )
    assert "Moved to Thu 04 Mar, 10:00." in moved.text
    (booking,) = api.ok("GET", f"/providers/{provider_id}/reservations")["items"]
    assert (booking["start_time"], booking["end_time"], booking["status"]) == (
        iso(NINE + timedelta(hours=1)),
        iso(NINE + timedelta(minutes=105)),
        "confirmed",
    )
    # A rival now sees none of the moved appointment's slots, buffer included.
    states = api.slot_states(provider_id)
    assert [
        m for m in range(0, 120, 15) if states[iso(NINE + timedelta(minutes=m))] != "available"
    ] == [
        60,
        75,
        90,
        105,
    ]


def test_clients_take_seats_in_a_group_session_and_the_provider_cancels_it(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    group_form = TYPE_FORM | {
        "name": "Yoga",
        "duration_minutes": "30",
        "buffer_after_minutes": "0",
        "capacity": "4",
    }
    desk.submit("/provider/types", group_form, from_page="/provider")
    (kind,) = api.ok("GET", f"/providers/{provider_id}/appointment-types")["items"]
    assert kind["capacity"] == 4
    carol, dave = new_browser(), new_browser()
    carol.sign_up()
    dave.sign_up("Dave", "dave@example.com")
    week_url = f"/book?provider={provider_id}&type={kind['id']}&week=2027-03-04&tz=UTC"
    week = carol.get(week_url).text
    assert "4 of 4 seats left" in week
    assert 'name="seats"' in week
    first = SLOT_BUTTON.findall(week)[0]
    held = carol.submit(
        "/book/hold",
        {"slot_id": first, "appointment_type_id": kind["id"], "seats": "3"},
        from_page=week_url,
    )
    assert held.url.path.startswith("/book/holds/")
    # Dave sees one seat left there; two more are refused, one is taken.
    assert "1 of 4 seats left" in dave.get(week_url).text
    refused = dave.submit(
        "/book/hold",
        {"slot_id": first, "appointment_type_id": kind["id"], "seats": "2"},
        from_page=week_url,
    )
    assert "only 1 seat is left" in refused.text
    dave.submit(
        "/book/hold", {"slot_id": first, "appointment_type_id": kind["id"]}, from_page=week_url
    )
    (session,) = api.ok("GET", f"/providers/{provider_id}/sessions")["items"]
    assert session["seats_taken"] == 4

    # The provider's week shows one session with both clients, and cancels it whole.
    page = desk.get("/provider?week=2027-03-04&tz=UTC").text
    assert "Group session: Carol, Dave" in page
    assert "4 seats" in page
    cancelled = desk.submit(
        f"/provider/sessions/{session['id']}/cancel", {"week": "2027-03-04"}, from_page="/provider"
    )
    assert "Cancelled the session (2 bookings)." in cancelled.text
    assert api.ok("GET", f"/providers/{provider_id}/sessions")["items"] == []
