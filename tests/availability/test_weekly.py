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
