"""Weekly rules in the provider's zone, including both daylight-saving changes."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.api import Api, Json

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekly(api: Api, provider: Json, start: date, end: date, *rules: tuple[str, str, str]) -> Json:
    result: Json = api.ok(
        "POST",
        f"/providers/{provider['id']}/availability/weekly",
        201,
        json={
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "rules": [{"weekday": d, "start": s, "end": e} for d, s, e in rules],
        },
    )
    return result


def starts(window: Json) -> list[datetime]:
    return [datetime.fromisoformat(s["start_time"]) for s in window["slots"]]


def test_rules_expand_on_matching_weekdays_in_the_providers_zone(api: Api) -> None:
    provider = api.provider(timezone="Europe/Berlin")
    result = weekly(
        api,
        provider,
        date(2027, 4, 5),
        date(2027, 4, 18),
        ("mon", "09:00", "10:00"),
        ("wed", "14:00", "14:30"),
    )
    assert result["timezone"] == "Europe/Berlin"
    got = starts(result)
    assert len(got) == 2 * 4 + 2 * 2
    # 09:00 CEST is 07:00 UTC.
    assert got[0] == datetime(2027, 4, 5, 7, 0, tzinfo=UTC)
    assert {moment.weekday() for moment in got} == {0, 2}
    # Repeating it creates nothing new.
    again = weekly(api, provider, date(2027, 4, 5), date(2027, 4, 18), ("mon", "09:00", "10:00"))
    assert again["slots"] == []


def test_24_00_means_end_of_day(api: Api) -> None:
    provider = api.provider(timezone="America/New_York")
    got = starts(
        weekly(api, provider, date(2027, 6, 7), date(2027, 6, 7), ("mon", "23:00", "24:00"))
    )
    assert got[0] == datetime(2027, 6, 8, 3, 0, tzinfo=UTC)
    assert len(got) == 4


@pytest.mark.parametrize(
    ("zone", "day", "rule", "expected_hours", "expected_first", "expected_last"),
    [
        # Spring: Berlin skips 02:00-03:00 on 2027-03-28; 01:00-04:00 local is 2 real hours.
        (
            "Europe/Berlin",
            date(2027, 3, 28),
            ("sun", "01:00", "04:00"),
            2,
            datetime(2027, 3, 28, 0, 0, tzinfo=UTC),
            datetime(2027, 3, 28, 1, 45, tzinfo=UTC),
        ),
        # Autumn: Berlin repeats 02:00-03:00 on 2027-10-31; 01:00-04:00 local is 4 real hours.
        (
            "Europe/Berlin",
            date(2027, 10, 31),
            ("sun", "01:00", "04:00"),
            4,
            datetime(2027, 10, 30, 23, 0, tzinfo=UTC),
            datetime(2027, 10, 31, 2, 45, tzinfo=UTC),
        ),
        # Spring: New York skips 02:00-03:00 on 2027-03-14.
        (
            "America/New_York",
            date(2027, 3, 14),
            ("sun", "01:00", "04:00"),
            2,
            datetime(2027, 3, 14, 6, 0, tzinfo=UTC),
            datetime(2027, 3, 14, 7, 45, tzinfo=UTC),
        ),
        # Autumn: New York repeats 01:00-02:00 on 2027-11-07; 00:00-03:00 local is 4 real hours.
        (
            "America/New_York",
            date(2027, 11, 7),
            ("sun", "00:00", "03:00"),
            4,
            datetime(2027, 11, 7, 4, 0, tzinfo=UTC),
            datetime(2027, 11, 7, 7, 45, tzinfo=UTC),
        ),
    ],
)
def test_daylight_saving_days_neither_invent_nor_duplicate_slots(
    api: Api,
    zone: str,
    day: date,
    rule: tuple[str, str, str],
    expected_hours: int,
    expected_first: datetime,
    expected_last: datetime,
) -> None:
    provider = api.provider(timezone=zone)
    got = starts(weekly(api, provider, day, day, rule))
    assert len(got) == len(set(got)) == expected_hours * 4
    assert (got[0], got[-1]) == (expected_first, expected_last)
    # Contiguous in real time: every step is exactly one slot.
    assert all(b - a == timedelta(minutes=15) for a, b in zip(got, got[1:], strict=False))
    assert api.sql("SELECT count(*) FROM slots")[0][0] == expected_hours * 4


def test_a_rule_starting_inside_the_skipped_hour_starts_when_the_clock_resumes(api: Api) -> None:
    provider = api.provider(timezone="Europe/Berlin")
    got = starts(
        weekly(api, provider, date(2027, 3, 28), date(2027, 3, 28), ("sun", "02:30", "04:00"))
    )
    # Local 03:00 CEST (01:00 UTC) to 04:00 CEST (02:00 UTC).
    assert got == [
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(4)
    ]


@pytest.mark.parametrize(
    "body",
    [
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-01",
            "rules": [{"weekday": "mon", "start": "09:00", "end": "10:00"}],
        },
        {
            "start_date": "2027-01-01",
            "end_date": "2028-01-05",
            "rules": [{"weekday": "mon", "start": "09:00", "end": "10:00"}],
        },
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-06",
            "rules": [{"weekday": "mon", "start": "10:00", "end": "09:00"}],
        },
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-06",
            "rules": [{"weekday": "mon", "start": "09:10", "end": "10:00"}],
        },
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-06",
            "rules": [{"weekday": "monday", "start": "09:00", "end": "10:00"}],
        },
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-06",
            "rules": [{"weekday": "mon", "start": "9:00", "end": "10:00"}],
        },
        {
            "start_date": "2027-04-05",
            "end_date": "2027-04-06",
            "rules": [{"weekday": "mon", "start": "24:00", "end": "24:00"}],
        },
        {"start_date": "2027-04-05", "end_date": "2027-04-06", "rules": []},
    ],
)
def test_bad_weekly_requests_are_422(api: Api, body: Json) -> None:
    provider = api.provider()
    response = api.client.post(f"/providers/{provider['id']}/availability/weekly", json=body)
    assert response.status_code == 422, response.text
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0


@pytest.mark.parametrize(
    ("first", "last"), [("0001-01-01", "0001-01-07"), ("9999-12-25", "9999-12-31")]
)
def test_days_at_the_ends_of_the_calendar_are_refused_not_overflowed(
    api: Api, first: str, last: str
) -> None:
    provider = api.provider(timezone="Pacific/Kiritimati")
    response = api.client.post(
        f"/providers/{provider['id']}/availability/weekly",
        json={
            "start_date": first,
            "end_date": last,
            "rules": [{"weekday": day, "start": "00:00", "end": "24:00"} for day in WEEKDAYS],
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_window"
    assert "dates must lie between" in response.json()["detail"]
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0


def _weekly_answer(api: Api, provider: Json, day: date, start: str, end: str) -> Json:
    response = api.client.post(
        f"/providers/{provider['id']}/availability/weekly",
        json={
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(days=6)).isoformat(),
            "rules": [{"weekday": WEEKDAYS[day.weekday()], "start": start, "end": end}],
        },
    )
    body: Json = response.json()
    body["status"] = response.status_code
    return body


@pytest.mark.parametrize(
    ("zone", "start", "nearest"),
    [
        ("Asia/Kolkata", "09:00", ("08:30", "09:30")),
        ("Asia/Kathmandu", "09:00", ("08:45", "09:45")),
        ("America/St_Johns", "09:00", ("08:30", "09:30")),
    ],
)
def test_rules_off_the_zone_s_slot_grid_are_422_naming_the_nearest_times(
    api: Api, zone: str, start: str, nearest: tuple[str, str]
) -> None:
    """60-minute slots align in UTC; in these zones a local 09:00 is no slot start."""
    api.configure(slot_minutes=60)
    provider = api.provider(timezone=zone)
    answer = _weekly_answer(api, provider, date(2027, 3, 1), start, "12:00")
    assert answer["status"] == 422, answer
    assert answer["code"] == "invalid_window"
    assert f"{start} on 2027-03-01 in {zone} is not on the 60-minute slot grid" in answer["detail"]
    assert f"nearest slot boundaries are {nearest[0]} and {nearest[1]}" in answer["detail"]
    assert api.sql("SELECT count(*) FROM slots") == [(0,)]


def test_rules_on_the_zone_s_grid_publish_every_hour(api: Api) -> None:
    api.configure(slot_minutes=60)
    provider = api.provider(timezone="Asia/Kolkata")
    answer = _weekly_answer(api, provider, date(2027, 3, 1), "09:30", "12:30")
    assert answer["status"] == 201, answer
    assert [s["start_time"] for s in answer["slots"]] == [
        "2027-03-01T04:00:00Z",
        "2027-03-01T05:00:00Z",
        "2027-03-01T06:00:00Z",
    ]


def test_lord_howe_s_half_hour_dst_moves_a_60_minute_grid_off_a_rule(api: Api) -> None:
    """+11:00 until 4 April 2027, then +10:30: 09:00 is a boundary before, not after."""
    api.configure(slot_minutes=60)
    provider = api.provider(timezone="Australia/Lord_Howe")
    before = _weekly_answer(api, provider, date(2027, 3, 29), "09:00", "11:00")
    assert before["status"] == 201, before
    assert len(before["slots"]) == 2
    after = _weekly_answer(api, provider, date(2027, 4, 5), "09:00", "11:00")
    assert after["status"] == 422, after
    assert "09:00 on 2027-04-05 in Australia/Lord_Howe" in after["detail"]
    assert "are 08:30 and 09:30" in after["detail"]


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_15_minute_slots_take_any_quarter_hour_in_any_zone(api: Api, zone: str) -> None:
    provider = api.provider(timezone=zone)
    answer = _weekly_answer(api, provider, date(2027, 3, 29), "09:00", "10:00")
    assert answer["status"] == 201, answer
    assert len(answer["slots"]) == 4
