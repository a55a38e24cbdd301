"""Each booking rule's SQL (as the ORM paths and the SQL text use it) and its Python
twin agree, row by row, on both databases; the PostgreSQL function that counts live
holds carries the rule's own text."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from appointments.availability.schemas import effective_status
from appointments.clock import FrozenClock
from appointments.scheduling import rules
from appointments.scheduling.models import Reservation, Slot
from tests.api import Api
from tests.conftest import START

NOW = START + timedelta(days=3)
AROUND = (timedelta(seconds=-1), timedelta(0), timedelta(seconds=1))


def _slots(api: Api, provider_id: uuid.UUID) -> list[dict[str, Any]]:
    """A slot of every status, and reserved ones whose hold ends just before, at and
    just after NOW."""
    rows: list[dict[str, Any]] = []
    start = NOW + timedelta(days=2)
    states = [
        ("available", None),
        ("confirmed", None),
        ("removed", None),
        *[("reserved", NOW + offset) for offset in AROUND],
    ]
    # Each state twice: without and with busy time over it.
    for busy in (False, True):
        for status, hold in states:
            start += timedelta(minutes=15)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "provider_id": provider_id,
                    "start_time": start,
                    "end_time": start + timedelta(minutes=15),
                    "status": status,
                    "hold_expires_at": hold,
                    "busy": busy,
                }
            )

    async def add(session: Any) -> None:
        await session.execute(insert(Slot), rows)

    api.in_session(add)
    return rows


@dataclass
class _Row:
    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: Any
    end_time: Any
    status: str
    hold_expires_at: Any
    busy: bool


def test_slot_rules_and_their_twins_agree(api: Api, clock: FrozenClock) -> None:
    provider = uuid.UUID(api.provider()["id"])
    rows = _slots(api, provider)
    twins: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        (rules.slot_free("slots"), lambda r: rules.slot_is_free(r["status"], r["hold"], NOW)),
        (
            rules.slot_hold_ran_out("slots"),
            lambda r: rules.slot_hold_has_run_out(r["status"], r["hold"], NOW),
        ),
        (
            rules.slot_open("slots"),
            lambda r: rules.slot_is_open(r["status"], r["hold"], r["busy"], NOW),
        ),
    ]
    for fragment, twin in twins:

        async def matching(session: Any, fragment: str = fragment) -> set[uuid.UUID]:
            query = select(Slot.id).where(rules.where(fragment, NOW))
            return set((await session.scalars(query)).all())

        expected = {r["id"] for r in rows if twin(r | {"hold": r["hold_expires_at"]})}
        assert api.in_session(matching) == expected, fragment
    # Every slot that is not open is one the index of slots not available holds: the
    # series' later weeks look for the closed ones there only.
    closed = f"NOT {rules.slot_open('slots')} AND NOT {rules.slot_not_available('slots')}"

    async def closed_elsewhere(session: Any) -> list[uuid.UUID]:
        return list((await session.scalars(select(Slot.id).where(rules.where(closed, NOW)))).all())

    assert api.in_session(closed_elsewhere) == []
    # The status answers show at NOW: the same, through the listing's own SQL.
    clock.set(NOW)
    shown = {item["start_time"]: item["status"] for item in api.slots(str(provider), status="all")}
    # available; confirmed; holds ended a second ago and right now: available; the
    # hold that ends in a second: reserved; removed: never shown. Under busy time the
    # free ones read busy, the booked ones their booking.
    assert sorted(shown.values()) == (
        ["available"] * 3 + ["busy"] * 3 + ["confirmed"] * 2 + ["reserved"] * 2
    )
    items = api.slots(str(provider), status="all")
    by_id = {r["id"]: r for r in rows}
    for item in items:
        assert effective_status(_Row(**by_id[uuid.UUID(item["id"])]), NOW) == item["status"]


def test_the_notice_rule_and_its_twin_agree(api: Api) -> None:
    provider = uuid.UUID(api.provider()["id"])
    rows = _slots(api, provider)  # starts from NOW + 2 days + 15 minutes, every 15
    notice = timedelta(days=2, minutes=30)
    after = rules.bookable_after(NOW, notice)

    async def matching(session: Any) -> set[uuid.UUID]:
        bookable = rules.where(rules.starts_bookable("slots"), bookable_after=after)
        return set((await session.scalars(select(Slot.id).where(bookable))).all())

    expected = {r["id"] for r in rows if rules.is_bookable(r["start_time"], NOW, notice)}
    assert 0 < len(expected) < len(rows)  # the start exactly at the notice is not bookable
    assert api.in_session(matching) == expected


def test_reservation_rules_and_their_twins_agree(api: Api) -> None:
    provider = uuid.UUID(api.provider()["id"])
    client = uuid.UUID(api.customer()["id"])
    statuses = ("held", "confirmed", "expired", "cancelled")
    rows: list[dict[str, Any]] = []
    start = NOW + timedelta(days=5)
    slot_rows = []
    for status in statuses:
        for offset in AROUND:
            start += timedelta(minutes=15)
            slot_id = uuid.uuid4()
            slot_rows.append(
                {
                    "id": slot_id,
                    "provider_id": provider,
                    "start_time": start,
                    "end_time": start + timedelta(minutes=15),
                    "status": "available",
                    "hold_expires_at": None,
                }
            )
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "slot_id": slot_id,
                    "provider_id": provider,
                    "client_id": client,
                    "status": status,
                    "start_time": start,
                    "end_time": start + timedelta(minutes=15),
                    "occupied_start": start,
                    "occupied_end": start + timedelta(minutes=15),
                    "created_at": NOW - timedelta(hours=1),
                    "expires_at": NOW + offset,
                }
            )

    async def add(session: Any) -> None:
        await session.execute(insert(Slot), slot_rows)
        await session.execute(insert(Reservation), rows)

    api.in_session(add)
    for fragment, twin in (
        (rules.hold_live("reservations"), rules.hold_is_live),
        (rules.hold_ran_out("reservations"), rules.hold_has_run_out),
        (rules.reservation_live("reservations"), rules.reservation_is_live),
    ):

        async def matching(session: Any, fragment: str = fragment) -> set[uuid.UUID]:
            query = select(Reservation.id).where(rules.where(fragment, NOW))
            return set((await session.scalars(query)).all())

        expected = {r["id"] for r in rows if twin(r["status"], r["expires_at"], NOW)}
        assert expected, fragment  # every rule matches some case and misses others
        assert expected != {r["id"] for r in rows}, fragment
        assert api.in_session(matching) == expected, fragment


def test_the_live_holds_function_carries_the_rule(api: Api) -> None:
    if api.dialect != "postgresql":
        pytest.skip("SQLite counts with the ORM query, which is the rule itself")
    (body,) = api.sql("SELECT pg_get_functiondef('live_holds(uuid, timestamptz)'::regprocedure)")[0]
    text = " ".join(body.split())
    assert f"SELECT {rules.live_hold_count()} FROM reservations" in text
    assert f"WHERE client_id = client AND {rules.hold_live('', 'at')}" in text
