"""The operator's commands, run as real processes."""

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from appointments.clock import FrozenClock
from tests.api import Api
from tests.booking.test_race import next_quarter_hour
from tests.live_server import APPOINTMENTS, service_env


@pytest.mark.live
def test_expire_command_expires_exactly_the_stale_holds(
    database_url: str, api: Api, clock: FrozenClock
) -> None:
    real_now = datetime.now(UTC)
    provider = api.provider()
    bob = api.customer()
    start = next_quarter_hour(real_now + timedelta(days=3))
    slots = api.publish(provider["id"], start, start + timedelta(minutes=45))["slots"]
    clock.set(real_now - timedelta(hours=2))  # holds made two hours ago have run out
    stale = api.reserve(bob["id"], slots[0]["id"]).json()
    clock.set(real_now)
    live = api.reserve(bob["id"], slots[1]["id"]).json()

    done = subprocess.run(
        [APPOINTMENTS, "expire"], env=service_env(database_url), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "expired 1 reservation(s)"
    rows = dict(api.sql("SELECT id, status FROM reservations"))
    assert rows[api.db_id(stale["id"])] == "expired"
    assert rows[api.db_id(live["id"])] == "held"
    statuses = dict(api.sql("SELECT id, status FROM slots"))
    assert statuses[api.db_id(slots[0]["id"])] == "available"
    assert statuses[api.db_id(slots[1]["id"])] == "reserved"


@pytest.mark.live
def test_migrate_command_brings_a_new_database_to_head(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    done = subprocess.run(
        [APPOINTMENTS, "migrate"], env=service_env(url), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "head" in done.stdout
