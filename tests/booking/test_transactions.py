"""A failure in the middle of a multi-row change leaves nothing behind."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from appointments.availability import repository as published
from appointments.booking import one_statement
from appointments.scheduling import holds, slots
from tests.api import Api
from tests.conftest import START

DAY = START + timedelta(days=3)


class InjectedFault(Exception):
    pass


def _logged_fault(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the service logged an unhandled InjectedFault (the 500 is ours)."""
    return any(
        record.exc_info is not None and isinstance(record.exc_info[1], InjectedFault)
        for record in caplog.records
    )


def test_reserve_failing_after_the_claim_persists_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    # SQLite claims, then inserts; PostgreSQL claims and inserts in one statement.
    # Either way the fault comes after the slot's UPDATE ran in the transaction.
    module: Any = one_statement if api.dialect == "postgresql" else slots
    name = "reserve" if api.dialect == "postgresql" else "claim_slot_if_free"
    original = getattr(module, name)
    # What the claim returned, read after the request: an assert in here would only
    # turn into one more 500, indistinguishable from the fault itself.
    claimed: list[Any] = []

    async def claim_then_fail(*args: Any, **kwargs: Any) -> Any:
        outcome = await original(*args, **kwargs)
        claimed.append(getattr(outcome, "claimed", outcome))
        raise InjectedFault

    monkeypatch.setattr(module, name, claim_then_fail)
    # With an Idempotency-Key the reserve runs in a transaction on both databases (the
    # key is stored with the answer); without one, SQLite still does.
    key = {"Idempotency-Key": "k-1"} if api.dialect == "postgresql" else {}
    response = api.client.post(
        f"/clients/{bob['id']}/reserve", json={"slot_id": slot["id"]}, headers=key
    )
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "InjectedFault" not in response.text
    # The UPDATE really ran inside the transaction, and the 500 is the injected fault.
    assert len(claimed) == 1
    assert claimed[0] is not None
    assert _logged_fault(caplog)
    assert api.sql("SELECT status, hold_expires_at FROM slots") == [("available", None)]
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0
    assert api.sql("SELECT count(*) FROM events")[0][0] == 0

    monkeypatch.undo()
    assert api.reserve(bob["id"], slot["id"]).status_code == 201


def test_a_reserve_autocommits_failing_midway_persists_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL without a key: the reserve is one statement, its own transaction. A
    failure after its writing parts ran (the claim, the insert, the link and the
    events) must undo them all."""
    if api.dialect != "postgresql":
        pytest.skip("SQLite reserves step by step inside a transaction (test above)")
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    failing = one_statement.RESERVE_SQL.replace(
        "AS client_known", "AS client_known, (SELECT count(*) / 0 FROM linked) AS boom"
    )
    assert failing != one_statement.RESERVE_SQL
    monkeypatch.setattr(one_statement, "RESERVE_SQL", failing)
    response = api.reserve(bob["id"], slot["id"])
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert api.sql("SELECT status, hold_expires_at FROM slots") == [("available", None)]
    assert api.sql("SELECT count(*) FROM reservations")[0][0] == 0
    assert api.sql("SELECT count(*) FROM reservation_slots")[0][0] == 0
    assert api.sql("SELECT count(*) FROM events")[0][0] == 0

    monkeypatch.undo()
    assert api.reserve(bob["id"], slot["id"]).status_code == 201


def test_confirm_failing_before_the_slot_update_persists_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    reservation = api.reserve(bob["id"], slot["id"]).json()

    async def fail(*_args: Any) -> None:
        raise InjectedFault

    monkeypatch.setattr(slots, "mark_confirmed", fail)
    # In a transaction: with an Idempotency-Key on PostgreSQL, always on SQLite.
    response = api.client.post(
        f"/clients/{bob['id']}/confirm",
        json={"reservation_id": reservation["id"]},
        headers={"Idempotency-Key": "k-2"},
    )
    assert response.status_code == 500
    assert _logged_fault(caplog)
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    assert api.sql("SELECT status FROM slots") == [("reserved",)]


def test_a_confirm_autocommits_failing_midway_persists_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    if api.dialect != "postgresql":
        pytest.skip("SQLite confirms inside a transaction (test above)")
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    reservation = api.reserve(bob["id"], slot["id"]).json()
    events = api.sql("SELECT count(*) FROM events")[0][0]
    failing = one_statement.CONFIRM_SQL.replace(
        "AS changed,", "AS changed, (SELECT count(*) / 0 FROM marked) AS boom,"
    )
    assert failing != one_statement.CONFIRM_SQL
    monkeypatch.setattr(one_statement, "CONFIRM_SQL", failing)
    assert api.confirm(bob["id"], reservation["id"]).status_code == 500
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    assert api.sql("SELECT status FROM slots") == [("reserved",)]
    assert api.sql("SELECT count(*) FROM events")[0][0] == events

    monkeypatch.undo()
    assert api.confirm(bob["id"], reservation["id"]).status_code == 200
    assert api.sql("SELECT status FROM slots") == [("confirmed",)]
    assert api.sql("SELECT count(*) FROM events")[0][0] == events + 1


def test_failing_slot_insert_midway_leaves_no_slots(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = api.provider()
    insert = published.insert_missing_slots

    inserted: list[int] = []

    async def insert_half_then_fail(
        session: Any, provider_id: uuid.UUID, starts: Sequence[datetime], length: timedelta
    ) -> None:
        inserted.append(len(await insert(session, provider_id, starts[: len(starts) // 2], length)))
        raise InjectedFault

    monkeypatch.setattr(published, "insert_missing_slots", insert_half_then_fail)
    response = api.client.post(
        f"/providers/{provider['id']}/availability",
        json={"start_time": DAY.isoformat(), "end_time": (DAY + timedelta(hours=4)).isoformat()},
    )
    assert response.status_code == 500
    assert inserted == [8]  # half of the 16 slots were written before the fault
    assert _logged_fault(caplog)
    assert api.sql("SELECT count(*) FROM slots")[0][0] == 0


def test_client_delete_failing_midway_keeps_everything(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    provider = api.provider()
    bob = api.customer()
    slot = api.slot(provider["id"], DAY)
    assert api.reserve(bob["id"], slot["id"]).status_code == 201
    cancel = holds.cancel_live_of_client

    async def cancel_then_fail(*args: Any) -> None:
        await cancel(*args)
        raise InjectedFault

    monkeypatch.setattr(holds, "cancel_live_of_client", cancel_then_fail)
    assert api.client.delete(f"/clients/{bob['id']}").status_code == 500
    assert _logged_fault(caplog)
    assert api.sql("SELECT status FROM reservations") == [("held",)]
    assert api.sql("SELECT count(*) FROM clients")[0][0] == 1
