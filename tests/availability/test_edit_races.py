"""An availability edit racing a cancel, both taking locks in the one order (reservation
rows, then slot rows), on PostgreSQL with real server processes."""

import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import bearer
from tests.gate import gate
from tests.live_server import live_server, publish_ahead, start_all

ADMIN = bearer(Role.ADMIN, "edit-race")


def _send(base: str, method: str, path: str, **kwargs: object) -> tuple[int, str]:
    with httpx.Client(base_url=base, headers=ADMIN, timeout=60) as own:
        response = own.request(method, path, **kwargs)  # type: ignore[arg-type]
        return response.status_code, response.text


@pytest.mark.live
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.usefixtures("emptied_postgresql_url")  # empties what the live server wrote
def test_a_withdrawal_racing_a_cancel_of_its_booking_never_deadlocks(
    database_url: str,
) -> None:
    """The cancel queues on the booking's row first, then the withdrawal: with the old
    order (its slot rows first) the two deadlocked and one answered 503."""
    with live_server(database_url) as base, httpx.Client(base_url=base, headers=ADMIN) as http:
        provider, slots = publish_ahead(http, "Dr Race", timedelta(minutes=30))
        bob = http.post("/clients", json={"name": "B", "email": "b@example.com"}).json()
        held = http.post(f"/clients/{bob['id']}/reserve", json={"slot_id": slots[0]["id"]}).json()
        assert http.post(f"/clients/{bob['id']}/confirm", json={"reservation_id": held["id"]})
        cancel = functools.partial(
            _send, base, "POST", f"/clients/{bob['id']}/reservations/{held['id']}/cancel"
        )
        withdraw = functools.partial(
            _send,
            base,
            "DELETE",
            f"/providers/{provider['id']}/availability",
            params={
                "from": slots[0]["start_time"],
                "to": slots[-1]["end_time"],
                "on_conflict": "cancel",
            },
        )
        with gate(database_url) as booking_row, ThreadPoolExecutor(2) as pool:
            booking_row.hold(
                "SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE", uuid.UUID(held["id"])
            )
            (cancelled,) = start_all(pool, [cancel])
            booking_row.wait_for(1)
            (withdrawn,) = start_all(pool, [withdraw])
            booking_row.wait_for(2)
            booking_row.release()
            answers = [cancelled.result(), withdrawn.result()]
        assert [status for status, _ in answers] == [200, 200], answers
        assert http.get(f"/clients/{bob['id']}/reservations").json()["items"][0]["status"] == (
            "cancelled"
        )
        left = http.get(
            f"/providers/{provider['id']}/availability",
            params={"status": "all", "from": slots[0]["start_time"]},
        ).json()["items"]
        assert left == []


@pytest.mark.live
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.usefixtures("emptied_postgresql_url")  # empties what the live server wrote
def test_deleting_a_provider_racing_the_sweep_never_deadlocks(database_url: str) -> None:
    """The sweep queues on a run-out hold's row first, then the provider's deletion:
    with its old order (delete the free slots, whose cascade reaches the hold's row)
    the two deadlocked on the hold's slot."""
    with (
        live_server(database_url, hold_seconds="1") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider, slots = publish_ahead(http, "Dr Gone", timedelta(minutes=30))
        bob = http.post("/clients", json={"name": "B", "email": "b@example.com"}).json()
        held = http.post(f"/clients/{bob['id']}/reserve", json={"slot_id": slots[0]["id"]}).json()
        time.sleep(1.5)  # the hold runs out, unswept
        sweep = functools.partial(_send, base, "POST", "/admin/expire-reservations")
        delete = functools.partial(
            _send,
            base,
            "DELETE",
            f"/providers/{provider['id']}",
            params={"cancel_conflicts": "true"},
        )
        with gate(database_url) as hold_row, ThreadPoolExecutor(2) as pool:
            hold_row.hold(
                "SELECT 1 FROM reservations WHERE id = $1 FOR UPDATE", uuid.UUID(held["id"])
            )
            (swept,) = start_all(pool, [sweep])
            hold_row.wait_for(1)
            (deleted,) = start_all(pool, [delete])
            hold_row.wait_for(2)
            hold_row.release()
            answers = [swept.result(), deleted.result()]
        assert [status for status, _ in answers] == [200, 204], answers
        assert http.get(f"/providers/{provider['id']}").status_code == 404
