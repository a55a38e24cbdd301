"""The unique indexes are the last guard against double booking: when a check before
them is missed, their refusal is still a 409 `slot_unavailable`, never a 500.

The HTTP tests switch off the check that normally comes first (`_lock_span`), so the
insert meets the index for real, on SQLite and on PostgreSQL.
"""

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import IntegrityError

from appointments.booking import spans
from appointments.db import violates
from appointments.scheduling.models import ONE_LIVE_PER_SLOT, ONE_RESERVATION_PER_SLOT
from tests.api import Api, Json
from tests.conftest import START

NINE = (START + timedelta(days=3)).replace(hour=9)


def _skip_the_span_check(monkeypatch: pytest.MonkeyPatch, slot_ids: Sequence[str]) -> None:
    """`_lock_span` answers these slots, free or not: only the indexes stand in the way."""

    async def unchecked(*_args: Any, **_kwargs: Any) -> list[uuid.UUID]:
        return [uuid.UUID(slot_id) for slot_id in slot_ids]

    monkeypatch.setattr(spans, "lock_span", unchecked)


@pytest.fixture
def taken(api: Api) -> tuple[Json, list[str], Json]:
    """Slots at 09:00 and 09:15; Ann holds the 09:15 one. The provider, the slot ids and
    a second client, Bob."""
    provider = api.provider()
    slots = api.publish(provider["id"], NINE, NINE + timedelta(minutes=30))["slots"]
    ann = api.customer("Ann", "ann@example.com")
    assert api.reserve(ann["id"], slots[1]["id"]).status_code == 201
    return provider, [slot["id"] for slot in slots], api.customer()


def _assert_refused(api: Api, response: Any) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "slot_unavailable"
    assert api.sql("SELECT count(*) FROM reservations") == [(1,)]
    assert api.links() == 1


def test_a_second_live_reservation_of_a_slot_is_409_from_its_index(
    api: Api, taken: tuple[Json, list[str], Json], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob's appointment starts on Ann's slot: the reservations' index refuses it."""
    provider, slot_ids, bob = taken
    kind = api.appointment_type(provider["id"], duration_minutes=15)
    _skip_the_span_check(monkeypatch, slot_ids[1:])
    _assert_refused(api, api.reserve_type(bob["id"], slot_ids[1], kind["id"]))


def test_a_slot_occupied_by_another_appointment_is_409_from_its_index(
    api: Api, taken: tuple[Json, list[str], Json], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob's 30 minutes start on the free slot and run into Ann's: only the link
    table's index can refuse it."""
    provider, slot_ids, bob = taken
    kind = api.appointment_type(provider["id"], duration_minutes=30)
    _skip_the_span_check(monkeypatch, slot_ids)
    _assert_refused(api, api.reserve_type(bob["id"], slot_ids[0], kind["id"]))


DUPLICATE_LINK = (
    "INSERT INTO reservation_slots (reservation_id, slot_id, provider_id) "
    "SELECT :other, slot_id, provider_id FROM reservation_slots"
)
SECOND_LIVE = (
    "INSERT INTO reservations (id, slot_id, provider_id, client_id, status, start_time, "
    "end_time, occupied_start, occupied_end, created_at, expires_at) "
    "SELECT :other, slot_id, provider_id, client_id, status, start_time, end_time, "
    "occupied_start, occupied_end, created_at, expires_at FROM reservations"
)


@pytest.mark.parametrize(
    ("statement", "index", "other"),
    [
        (DUPLICATE_LINK, ONE_RESERVATION_PER_SLOT, ONE_LIVE_PER_SLOT),
        (SECOND_LIVE, ONE_LIVE_PER_SLOT, ONE_RESERVATION_PER_SLOT),
    ],
)
def test_violates_names_the_one_index_each_database_refused_with(
    api: Api, taken: tuple[Json, list[str], Json], statement: str, index: Any, other: Any
) -> None:
    """Through SQLAlchemy on both databases, and from asyncpg itself on PostgreSQL (the
    statements sent alone)."""
    fresh = api.db_id(str(uuid.uuid4()))
    with pytest.raises(IntegrityError) as refused:
        api.sql(statement, other=fresh)
    assert violates(refused.value, index)
    assert not violates(refused.value, other)
    if api.dialect != "postgresql":
        return

    async def raw() -> BaseException:
        url = api.client.app.state.settings.database_url  # type: ignore[attr-defined]
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await connection.execute(statement.replace(":other", "$1"), fresh)
        except asyncpg.UniqueViolationError as exc:
            refused: BaseException = exc
            return refused
        finally:
            await connection.close()
        raise AssertionError("the duplicate was accepted")

    portal = api.client.portal
    assert portal is not None
    refusal = portal.call(raw)
    assert violates(refusal, index)
    assert not violates(refusal, other)
