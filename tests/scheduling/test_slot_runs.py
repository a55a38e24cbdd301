"""`slot_runs`, kept by the database's triggers, says exactly which slot rows exist:
after every kind of write that adds or deletes slots (windows in any order, weekly
rules, withdrawals and their revival, raw inserts, a provider's deletion), on both
databases."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from appointments.scheduling.models import Slot
from tests.api import Api, Json, iso
from tests.conftest import START

DAY = START + timedelta(days=3)
SLOT = timedelta(minutes=15)


def _moment(value: Any) -> datetime:
    """A time as either database returns it from plain SQL (SQLite: naive UTC text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _islands(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Back-to-back or overlapping spans joined."""
    joined: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(end, joined[-1][1]))
        else:
            joined.append((start, end))
    return joined


def check_runs(api: Api, provider_id: str) -> list[tuple[datetime, datetime]]:
    """The provider's runs cover its slot rows exactly, each row once; returns the
    rows' islands."""
    pid = api.db_id(provider_id)
    slots = [
        (_moment(a), _moment(b))
        for a, b in api.sql("SELECT start_time, end_time FROM slots WHERE provider_id = :p", p=pid)
    ]
    runs = [
        (_moment(a), _moment(b))
        for a, b in api.sql("SELECT starts, ends FROM slot_runs WHERE provider_id = :p", p=pid)
    ]
    assert _islands(runs) == _islands(slots)
    # No overlap: the runs' lengths add up to the slots' (each row in one run).
    assert sum((b - a for a, b in runs), timedelta()) == sum((b - a for a, b in slots), timedelta())
    return _islands(slots)


def test_windows_published_in_any_order_make_the_runs_of_their_slots(api: Api) -> None:
    provider = api.provider()
    hours = list(range(12))
    random.Random(7).shuffle(hours)
    for hour in hours:
        if hour % 4 != 3:  # a gap every fourth hour
            api.publish(
                provider["id"], DAY + timedelta(hours=hour), DAY + timedelta(hours=hour + 1)
            )
            check_runs(api, provider["id"])
    # Overlapping and repeated windows add nothing twice.
    api.publish(provider["id"], DAY - timedelta(hours=1), DAY + timedelta(hours=5))
    api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    assert check_runs(api, provider["id"]) == [
        (DAY - timedelta(hours=1), DAY + timedelta(hours=7)),
        (DAY + timedelta(hours=8), DAY + timedelta(hours=11)),
    ]


def test_a_withdrawn_slot_stays_in_its_run_and_a_revived_one_adds_none(api: Api) -> None:
    """A withdrawal marks rows removed (the series' check reads them as not available
    by the index of such slots); the runs are of rows, so they stay."""
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=3))
    gone = api.client.delete(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY + timedelta(hours=1)), "to": iso(DAY + timedelta(hours=2))},
    )
    assert gone.json()["removed"] == 4
    api.publish(provider["id"], DAY + timedelta(hours=1), DAY + timedelta(hours=4))
    # The revived hour's rows are the same ones, each still in one run (check_runs
    # adds up their lengths); only the fourth hour is new.
    assert check_runs(api, provider["id"]) == [(DAY, DAY + timedelta(hours=4))]


def test_weekly_rules_and_a_replaced_range_keep_the_runs(api: Api) -> None:
    provider: Json = api.provider(timezone="Europe/Berlin")
    first = DAY.date()
    api.ok(
        "POST",
        f"/providers/{provider['id']}/availability/weekly",
        201,
        json={
            "start_date": first.isoformat(),
            "end_date": (first + timedelta(days=20)).isoformat(),
            "rules": [
                {"weekday": day, "start": "09:00", "end": "12:00"} for day in ("mon", "tue", "thu")
            ]
            + [{"weekday": "tue", "start": "13:00", "end": "17:30"}],
        },
    )
    islands = check_runs(api, provider["id"])
    assert len(islands) == 9 + 3  # 3 days a week over 3 weeks, Tuesday twice
    replaced = api.client.put(
        f"/providers/{provider['id']}/availability",
        params={"from": iso(DAY), "to": iso(DAY + timedelta(days=1))},
        json={
            "windows": [
                {
                    "start_time": iso(DAY + timedelta(hours=20)),
                    "end_time": iso(DAY + timedelta(hours=23)),
                }
            ]
        },
    )
    assert replaced.status_code == 200, replaced.text
    check_runs(api, provider["id"])


def test_rows_inserted_straight_into_the_table_are_covered(api: Api) -> None:
    """The triggers keep the runs whoever writes: here a bulk insert of the ORM, rows
    out of order, with holes, and two back to back with an existing run."""
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    offsets = [k for k in range(-8, 24) if k % 5 != 2]
    random.Random(3).shuffle(offsets)
    rows = [
        {
            "id": uuid.uuid4(),
            "provider_id": uuid.UUID(provider["id"]),
            "start_time": DAY + timedelta(hours=1) + k * SLOT,
            "end_time": DAY + timedelta(hours=1) + (k + 1) * SLOT,
            "status": "available",
        }
        for k in offsets
        if not -4 <= k < 0  # the hour published
    ]

    async def add(session: Any) -> None:
        await session.execute(insert(Slot), rows)

    api.in_session(add)
    check_runs(api, provider["id"])


def test_deleted_slots_cut_their_runs_and_a_deleted_provider_takes_them(api: Api) -> None:
    provider = api.provider()
    other = api.provider(name="Dr Bea")
    for who in (provider, other):
        api.publish(who["id"], DAY, DAY + timedelta(hours=4))
    pid = api.db_id(provider["id"])
    # The middle of the run, its first slot and its last go.
    for start in (DAY + timedelta(hours=2), DAY, DAY + timedelta(hours=4) - SLOT):
        api.sql(
            "DELETE FROM slots WHERE id = :id", id=api.db_id(api.slot_at(provider["id"], start))
        )
        check_runs(api, provider["id"])
    assert check_runs(api, provider["id"]) == [
        (DAY + SLOT, DAY + timedelta(hours=2)),
        (DAY + timedelta(hours=2) + SLOT, DAY + timedelta(hours=4) - SLOT),
    ]
    assert api.client.delete(f"/providers/{provider['id']}").status_code == 204
    assert api.sql("SELECT count(*) FROM slot_runs WHERE provider_id = :p", p=pid) == [(0,)]
    assert check_runs(api, other["id"]) == [(DAY, DAY + timedelta(hours=4))]
