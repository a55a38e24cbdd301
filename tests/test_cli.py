"""The operator's commands, run as real processes."""

import asyncio
import json
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from appointments.auth.tokens import Role, TokenVerifier
from appointments.clock import FrozenClock
from tests.api import Api, service_settings
from tests.live_server import APPOINTMENTS, next_quarter_hour, service_env


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
def test_roll_command_publishes_the_day_that_came_within_the_horizon(
    database_url: str, api: Api, clock: FrozenClock
) -> None:
    real_now = datetime.now(UTC)
    clock.set(real_now)
    provider = api.provider("Dr Roll", timezone="UTC")["id"]
    rules = [
        {"weekday": day, "start": "09:00", "end": "10:00"}
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    ]
    put = api.ok("PUT", f"/providers/{provider}/schedule", json={"rules": rules, "horizon_days": 3})
    last = datetime.fromisoformat(put["published_through"]).replace(tzinfo=UTC)
    # As a day passing leaves it: the last date not published yet.
    window = {"from": last.isoformat(), "to": (last + timedelta(days=1)).isoformat()}
    api.ok("DELETE", f"/providers/{provider}/availability", params=window)
    day_before = (last - timedelta(days=1)).date().isoformat()
    api.sql(f"UPDATE schedules SET published_through = '{day_before}'")

    def roll() -> str:
        done = subprocess.run(
            [APPOINTMENTS, "roll"], env=service_env(database_url), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert roll() == "rolled 1 schedule(s): 4 slot(s) published"
    assert roll() == "rolled 0 schedule(s): 0 slot(s) published"
    assert len(api.slots(provider, **window)) == 4


@pytest.mark.live
def test_migrate_command_brings_a_new_database_to_head(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    done = subprocess.run(
        [APPOINTMENTS, "migrate"], env=service_env(url), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "head" in done.stdout


@pytest.mark.live
def test_seed_demo_gives_a_newcomer_bookable_slots(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    subprocess.run([APPOINTMENTS, "migrate"], env=service_env(url), check=True, capture_output=True)
    done = subprocess.run(
        [APPOINTMENTS, "seed-demo"], env=service_env(url), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "with 160 slots" in done.stdout
    assert "appointments token --role client --subject" in done.stdout


@pytest.mark.live
def test_check_config_masks_secrets() -> None:
    env = service_env("postgresql://app:hunter2@db.internal:5432/booking")
    done = subprocess.run([APPOINTMENTS, "check-config"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["database_url"] == "postgresql://app:***@db.internal:5432/booking"
    assert shown["jwt_secret"] == "***"
    assert "hunter2" not in done.stdout
    assert env["APPOINTMENTS_JWT_SECRET"] not in done.stdout


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before it runs: SIGINT back to its default. A suite started in the
    background of a non-interactive shell (`.ci/run &`) ignores SIGINT, the child would
    inherit that, and Python keeps an inherited SIG_IGN: the Ctrl-C under test would
    never arrive (a sweeper left running, seen once)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.live
def test_sweeper_command_expires_stale_holds_until_stopped(
    database_url: str, api: Api, clock: FrozenClock
) -> None:
    real_now = datetime.now(UTC)
    provider = api.provider()
    bob = api.customer()
    start = next_quarter_hour(real_now + timedelta(days=3))
    slot = api.slot(provider["id"], start)
    clock.set(real_now - timedelta(hours=2))
    api.reserve(bob["id"], slot["id"])
    env = service_env(database_url, sweep_interval_seconds="0.2")
    process = subprocess.Popen(
        [APPOINTMENTS, "sweeper"],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if api.sql("SELECT status FROM reservations") == [("expired",)]:
                break
            time.sleep(0.1)
        assert api.sql("SELECT status FROM reservations") == [("expired",)]
        assert api.sql("SELECT status FROM slots") == [("available",)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


@pytest.mark.live
def test_create_provider_prints_its_id_and_a_token_that_signs_in(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/providers.db"
    env = service_env(url)
    subprocess.run([APPOINTMENTS, "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [APPOINTMENTS, "create-provider", "--name", "Dr Ada", "--timezone", "Europe/Berlin"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    provider_id = done.stdout.split()[1]
    token = done.stdout.strip().rsplit(" ", 1)[1]
    principal = asyncio.run(TokenVerifier(service_settings(url)).verify(token))
    assert (principal.role, principal.subject) == (Role.PROVIDER, provider_id)
    with sqlite3.connect(f"{tmp_path}/providers.db") as db:
        rows = db.execute("SELECT name, timezone FROM providers").fetchall()
    assert rows == [("Dr Ada", "Europe/Berlin")]

    refused = subprocess.run(
        [APPOINTMENTS, "create-provider", "--name", "Dr Bad", "--timezone", "Mars/Base"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "error:" in refused.stderr
