"""Bookable start times of a type: buffers, notice, horizon, daily cap, paging."""

from datetime import UTC, datetime, timedelta

from appointments.clock import FrozenClock
from tests.api import Api, iso
from tests.conftest import START

DAY = START + timedelta(days=3)  # 2027-03-04, a Thursday
NINE = DAY.replace(hour=9)


def quarter_hours(first: datetime, last: datetime) -> list[str]:
    """ISO times from `first` to `last` inclusive, every 15 minutes."""
    count = (last - first) // timedelta(minutes=15) + 1
    return [iso(first + timedelta(minutes=15 * i)) for i in range(count)]


def test_buffers_keep_starts_away_from_the_window_ends(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=3))  # 09:00-12:00
    after_only = api.appointment_type(provider["id"], buffer_after_minutes=15)
    both = api.appointment_type(provider["id"], buffer_before_minutes=30, buffer_after_minutes=15)
    # 45 minutes + 15 after must end by 12:00: last start 11:00.
    assert api.start_times(provider["id"], after_only["id"]) == quarter_hours(
        NINE, NINE + timedelta(hours=2)
    )
    # 30 before: first start 09:30; last start still 11:00.
    assert api.start_times(provider["id"], both["id"]) == quarter_hours(
        NINE + timedelta(minutes=30), NINE + timedelta(hours=2)
    )
    page = api.ok(
        "GET",
        f"/providers/{provider['id']}/appointment-types/{both['id']}/availability",
        params={"limit": 1},
    )
    assert page["items"] == [
        {
            "slot_id": api.slot_at(provider["id"], NINE + timedelta(minutes=30)),
            "start_time": "2027-03-04T09:30:00Z",
            "end_time": "2027-03-04T10:15:00Z",
            "seats_left": 1,
        }
    ]


def test_a_held_slot_blocks_every_start_whose_span_covers_it(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=3))
    kind = api.appointment_type(provider["id"], buffer_after_minutes=15)  # spans 60 minutes
    taken = NINE + timedelta(minutes=90)  # 10:30
    assert api.reserve(bob["id"], api.slot_at(provider["id"], taken)).status_code == 201
    # Starts 09:45..10:30 would need 10:30; 10:45 and later fit after it.
    expected = quarter_hours(NINE, NINE + timedelta(minutes=30)) + quarter_hours(
        NINE + timedelta(minutes=105), NINE + timedelta(hours=2)
    )
    assert api.start_times(provider["id"], kind["id"]) == expected
    # A gap in the published slots (withdrawn 10:00) blocks the same way.
    api.ok(
        "DELETE",
        f"/providers/{provider['id']}/availability",
        params={"from": iso(NINE + timedelta(hours=1)), "to": iso(NINE + timedelta(minutes=75))},
    )
    assert api.start_times(provider["id"], kind["id"]) == quarter_hours(NINE, NINE) + quarter_hours(
        NINE + timedelta(minutes=105), NINE + timedelta(hours=2)
    )


def test_a_hold_that_ran_out_frees_its_starts_at_once(api: Api, clock: FrozenClock) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=1))
    kind = api.appointment_type(provider["id"], duration_minutes=60)
    assert (
        api.reserve_type(bob["id"], api.slot_at(provider["id"], NINE), kind["id"]).status_code
        == 201
    )
    assert api.start_times(provider["id"], kind["id"]) == []
    clock.advance(minutes=31)
    assert api.start_times(provider["id"], kind["id"]) == [iso(NINE)]


def test_notice_and_horizon_bound_the_starts(api: Api) -> None:
    provider = api.provider()
    # From 08:00 on day +1 (exactly the 24-hour notice) to 10:00 on day +3.
    begin = START + timedelta(days=1)
    api.publish(provider["id"], begin, begin + timedelta(days=2, hours=2))
    kind = api.appointment_type(
        provider["id"], duration_minutes=15, min_notice_minutes=36 * 60, max_advance_days=2
    )
    starts = api.start_times(provider["id"], kind["id"], limit=1000)
    # Strictly later than now + 36 h; no later than now + 2 days.
    assert starts[0] == iso(START + timedelta(hours=36, minutes=15))
    assert starts[-1] == iso(START + timedelta(days=2))
    plain = api.appointment_type(provider["id"], duration_minutes=15)
    assert api.start_times(provider["id"], plain["id"], limit=1000)[0] == iso(
        begin + timedelta(minutes=15)
    )


def test_from_and_to_select_starts_and_pages_walk_them_all(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=4))
    kind = api.appointment_type(provider["id"], duration_minutes=30, buffer_before_minutes=15)
    everything = api.start_times(provider["id"], kind["id"])
    assert api.start_times(provider["id"], kind["id"], limit=2) == everything
    assert len(everything) == 14  # 09:15 .. 12:30
    selected = api.start_times(
        provider["id"],
        kind["id"],
        **{"from": iso(NINE + timedelta(hours=1)), "to": iso(NINE + timedelta(hours=2))},
    )
    assert selected == quarter_hours(NINE + timedelta(hours=1), NINE + timedelta(minutes=105))


def test_the_daily_cap_counts_days_in_the_providers_zone_across_a_dst_change(
    api: Api,
) -> None:
    """Berlin's 28 March 2027 has 23 hours: 27 Mar 23:00Z to 28 Mar 22:00Z."""
    provider = api.provider("Dr Berlin", timezone="Europe/Berlin")
    bob = api.customer()
    begin = datetime(2027, 3, 27, 22, 0, tzinfo=UTC)
    api.publish(provider["id"], begin, begin + timedelta(hours=25))
    kind = api.appointment_type(provider["id"], duration_minutes=15, max_per_day=1)
    booked_at = datetime(2027, 3, 28, 21, 30, tzinfo=UTC)  # 23:30 CEST, still the 28th
    booked = api.reserve_type(bob["id"], api.slot_at(provider["id"], booked_at), kind["id"])
    assert booked.status_code == 201, booked.text
    starts = set(api.start_times(provider["id"], kind["id"], limit=1000))
    assert iso(datetime(2027, 3, 27, 22, 45, tzinfo=UTC)) in starts  # 23:45 CET on the 27th
    assert iso(datetime(2027, 3, 27, 23, 0, tzinfo=UTC)) not in starts  # 00:00 on the 28th
    assert iso(datetime(2027, 3, 28, 21, 45, tzinfo=UTC)) not in starts  # 23:45 on the 28th
    assert iso(datetime(2027, 3, 28, 22, 0, tzinfo=UTC)) in starts  # 00:00 on the 29th
    assert len(starts) == 4 + 4  # 22:00-22:45Z on the 27th; 22:00-22:45Z on the 29th
    # Another type of the same provider is not capped by this one's bookings.
    free = api.appointment_type(provider["id"], duration_minutes=15)
    assert len(api.start_times(provider["id"], free["id"], limit=1000)) == 25 * 4 - 1


def test_bare_numbers_are_not_times(api: Api) -> None:
    provider = api.provider()
    kind = api.appointment_type(provider["id"])
    for path in (
        f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability",
        f"/providers/{provider['id']}/availability",
        f"/providers/{provider['id']}/reservations",
    ):
        for value in ("0.5", "1700000000", "-1"):
            for name in ("from", "to"):
                response = api.client.get(path, params={name: value})
                assert response.status_code == 422, (path, name, value, response.text)
                assert response.json()["code"] == "validation_error"


def test_an_unchanged_page_of_start_times_answers_304_to_its_etag(api: Api) -> None:
    provider = api.provider()
    bob = api.customer()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=2))
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability"
    page = api.client.get(path)
    assert page.status_code == 200
    tag = page.headers["etag"]
    first = page.json()["items"][0]
    assert first["end_time"] == iso(NINE + timedelta(minutes=30))
    unchanged = api.client.get(path, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert api.reserve(bob["id"], first["slot_id"]).status_code == 201
    changed = api.client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["items"][0]["start_time"] == iso(NINE + timedelta(minutes=15))


def test_a_listing_follows_every_change_to_its_terms_at_once(api: Api) -> None:
    """Start times are made from the type's terms and the provider's zone; a process
    remembers them between listings, so each change must show on the very next one."""
    provider = api.provider()
    api.publish(provider["id"], NINE, NINE + timedelta(hours=2))  # 09:00-11:00
    kind = api.appointment_type(provider["id"], duration_minutes=60, max_per_day=1)
    path = f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability"
    first = api.ok("GET", path)["items"][0]
    assert (first["start_time"], first["end_time"]) == (iso(NINE), iso(NINE + timedelta(hours=1)))

    api.ok(
        "PUT", path.removesuffix("/availability"), json={"name": "Short", "duration_minutes": 30}
    )
    first = api.ok("GET", path)["items"][0]
    assert first["end_time"] == iso(NINE + timedelta(minutes=30))
    assert api.start_times(provider["id"], kind["id"]) == quarter_hours(
        NINE, NINE + timedelta(minutes=90)
    )

    # The daily cap counts per day in the provider's zone: a booking at 23:30 UTC on the
    # day before is "today" in Berlin.
    api.ok(
        "PUT",
        path.removesuffix("/availability"),
        json={"name": "Capped", "duration_minutes": 30, "max_per_day": 1},
    )
    midnight = NINE.replace(hour=0)
    api.publish(provider["id"], midnight - timedelta(minutes=30), midnight)  # 00:30 in Berlin
    evening = {"id": api.slot_at(provider["id"], midnight - timedelta(minutes=30))}
    customer = api.customer()
    assert api.reserve_type(customer["id"], evening["id"], kind["id"]).status_code == 201
    assert api.start_times(provider["id"], kind["id"])  # UTC: another day, so still open
    api.ok(
        "PUT", f"/providers/{provider['id']}", json={"name": "Dr Ada", "timezone": "Europe/Berlin"}
    )
    assert api.start_times(provider["id"], kind["id"]) == []

    api.ok("DELETE", path.removesuffix("/availability"), 204)
    assert api.client.get(path).status_code == 404
