"""Delivery under real processes on PostgreSQL: a delivering service killed with -9
mid-run loses no event, and two workers at once never make one attempt twice."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import bearer
from tests.live_server import (
    APPOINTMENTS,
    create_clients,
    live_server,
    publish_ahead,
    service_env,
    start_service,
)
from tests.notifications.receiver import Receiver, receiver

pytestmark = pytest.mark.live

ADMIN = bearer(Role.ADMIN, "live-admin")


def committed_event_ids(http: httpx.Client, webhook_id: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/webhooks/{webhook_id}/deliveries", params=params).json()
        ids |= {item["event_id"] for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    # Slow enough that attempts are in flight when the process dies.
    with receiver(delay_seconds=0.3) as state:
        yield state


def test_kill_9_mid_delivery_loses_no_committed_event(
    emptied_postgresql_url: str, hooks: Receiver
) -> None:
    postgresql_url = emptied_postgresql_url
    settings = {
        "delivery_interval_seconds": "0.1",
        "webhook_timeout_seconds": "2",
        "mail_dir": tempfile.mkdtemp(),
    }
    log = tempfile.TemporaryFile()
    process, base = start_service(postgresql_url, log, workers=2, **settings)
    try:
        with httpx.Client(base_url=base, headers=ADMIN, timeout=10) as http:
            webhook = http.post("/webhooks", json={"url": hooks.url}).json()
            _, slots = publish_ahead(http, "Kill", timedelta(hours=10))
            clients = create_clients(http, 10)
            for index, slot in enumerate(slots[:30]):
                client = clients[index % len(clients)]
                held = http.post(f"/clients/{client['id']}/reserve", json={"slot_id": slot["id"]})
                assert held.status_code == 201, held.text
                confirmed = http.post(
                    f"/clients/{client['id']}/confirm", json={"reservation_id": held.json()["id"]}
                )
                assert confirmed.status_code == 200
            wait_until(lambda: len(hooks.received) >= 5, 20, "the first deliveries")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    delivered_before_kill = len(hooks.answered_ok)
    assert delivered_before_kill < 60, "the kill came too late to test anything"

    # A fresh worker finishes the job; attempts the dead one had begun are made again
    # once their leases (2 x 2 s + 5 s) run out, so some arrive twice (at least once).
    worker_log = tempfile.TemporaryFile()
    worker = subprocess.Popen(
        [APPOINTMENTS, "deliver"],
        env=service_env(postgresql_url, **settings),
        stdout=subprocess.DEVNULL,
        stderr=worker_log,
    )
    try:
        with live_server(postgresql_url, workers=1) as base:
            with httpx.Client(base_url=base, headers=ADMIN) as http:
                path = f"/webhooks/{webhook['id']}/deliveries"
                wait_until(
                    lambda: (
                        http.get(path, params={"status": "delivered", "limit": 1000})
                        .json()["items"]
                        .__len__()
                        == 60
                    ),
                    60,
                    "every delivery to be recorded as delivered",
                )
                committed = committed_event_ids(http, webhook["id"])
    except BaseException:
        worker_log.seek(0)
        sys.stderr.write(worker_log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        worker.terminate()
        worker.wait(timeout=15)
        worker_log.close()
    assert len(committed) == 60
    assert hooks.ids() == committed
    assert set(hooks.answered_ok) == committed


def test_two_workers_at_once_never_make_one_attempt_twice(
    emptied_postgresql_url: str, hooks: Receiver
) -> None:
    postgresql_url = emptied_postgresql_url
    settings = {"webhook_timeout_seconds": "5", "delivery_interval_seconds": "0.05"}
    with live_server(postgresql_url, workers=1) as base:
        with httpx.Client(base_url=base, headers=ADMIN, timeout=10) as http:
            webhook = http.post("/webhooks", json={"url": hooks.url}).json()
            for _ in range(120):
                assert http.post(f"/webhooks/{webhook['id']}/ping").status_code == 202
            workers = [
                subprocess.Popen(
                    [APPOINTMENTS, "deliver"],
                    env=service_env(postgresql_url, **settings),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(2)
            ]
            try:
                hooks.wait_for(120, timeout=60)
                time.sleep(0.5)  # room for any duplicate to show up
            finally:
                for worker in workers:
                    worker.terminate()
                    worker.wait(timeout=15)
    assert hooks.overlaps == []
    assert len(hooks.received) == 120  # no failures, so exactly once each
    assert set(hooks.answered_ok.values()) == {1}
