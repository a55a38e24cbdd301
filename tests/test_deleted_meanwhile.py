"""A write racing the deletion of what it belongs to answers as if it came after: 404,
never a 500, and nothing of it is left.

On PostgreSQL a request reads its rows without locks, so without care it could read a
provider (a client, an endpoint, a type, the slot it books) that a concurrent delete
is removing, and then fail on the gone row: an UPDATE that matches nothing, an INSERT
whose foreign key is gone, or a refusal that calls the slot taken. The gate deletes
the owner in a transaction of its own and holds it open; the request is seen waiting
on that transaction's locks; then the gate commits.
SQLite runs one writer at a time (BEGIN IMMEDIATE), so it cannot interleave like this.
"""

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from appointments.providers import service as providers_service
from tests.api import Api, iso
from tests.busy.test_calendars import settled
from tests.conftest import START
from tests.gate import gate

DAY = START + timedelta(days=3)
FREE = DAY + timedelta(hours=1)  # the free slot's start

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass(frozen=True)
class World:
    provider: str
    client: str
    type: str
    group_type: str
    free_slot: str
    held: str
    session: str
    series: str
    webhook: str
    calendar: str


@pytest.fixture
def world(api: Api) -> World:
    api.configure(max_holds_per_client=10)
    provider = api.provider(timezone="Europe/Berlin")["id"]
    for week in range(3):
        start = DAY + timedelta(weeks=week)
        api.publish(provider, start, start + timedelta(hours=2))
    kind = api.appointment_type(provider, duration_minutes=15)["id"]
    group = api.appointment_type(provider, duration_minutes=15, capacity=3)["id"]
    client = api.customer()["id"]
    held = api.reserve(client, api.slot_at(provider, DAY)).json()["id"]
    seat = api.reserve_type(client, api.slot_at(provider, DAY + timedelta(minutes=15)), group)
    series = api.ok(
        "POST",
        f"/clients/{client}/series",
        201,
        json={
            "slot_id": api.slot_at(provider, DAY + timedelta(minutes=30)),
            "repeat": {"count": 2},
        },
    )["id"]
    webhook = api.ok(
        "POST",
        "/webhooks",
        201,
        json={"url": "https://hooks.example.com/", "provider_id": provider},
    )["id"]
    calendar = api.ok("POST", f"/providers/{provider}/calendars", 201, json=CALENDAR)["id"]
    settled(api)
    free = api.slot_at(provider, FREE)
    session = seat.json()["session_id"]
    return World(provider, client, kind, group, free, held, session, series, webhook, calendar)


@dataclass(frozen=True)
class Write:
    method: str
    path: str
    body: Callable[[World], Any] = lambda _: None
    params: Callable[[World], Any] = lambda _: None
    # A key sends reserve and confirm down their in-transaction paths (no autocommit).
    keyed: bool = False


TYPE = {"name": "Consultation", "duration_minutes": 30}
WINDOW = {
    "start_time": iso(DAY + timedelta(hours=4)),
    "end_time": iso(DAY + timedelta(hours=5)),
}
HOURS = [{"weekday": "mon", "start": "09:00", "end": "10:00"}]
PERSON = {"name": "Eve", "email": "eve@example.com"}
HOOK = {"url": "https://h.example.com/", "enabled": True}
CALENDAR = {"kind": "ics", "url": "https://calendar.example.com/busy.ics"}

# Every write on what a provider has, raced with the provider's deletion.
OF_PROVIDER = {
    "replace provider": Write("PUT", "/providers/{provider}", lambda w: {"name": "Dr B"}),
    "delete provider": Write("DELETE", "/providers/{provider}"),
    "create type": Write("POST", "/providers/{provider}/appointment-types", lambda w: TYPE),
    "replace type": Write("PUT", "/providers/{provider}/appointment-types/{type}", lambda w: TYPE),
    "delete type": Write("DELETE", "/providers/{provider}/appointment-types/{type}"),
    "publish": Write("POST", "/providers/{provider}/availability", lambda w: WINDOW),
    "publish weekly": Write(
        "POST",
        "/providers/{provider}/availability/weekly",
        lambda w: {"start_date": "2027-03-08", "end_date": "2027-03-08", "rules": HOURS},
    ),
    "withdraw": Write(
        "DELETE",
        "/providers/{provider}/availability",
        params=lambda w: {"from": WINDOW["start_time"], "to": WINDOW["end_time"]},
    ),
    "schedule": Write(
        "PUT", "/providers/{provider}/schedule", lambda w: {"rules": HOURS, "horizon_days": 14}
    ),
    "override": Write(
        "PUT", "/providers/{provider}/schedule/overrides/2027-03-09", lambda w: {"intervals": []}
    ),
    "time off": Write("POST", "/providers/{provider}/time-off", lambda w: WINDOW),
    "calendar": Write("POST", "/providers/{provider}/calendars", lambda w: CALENDAR),
    "replace calendar": Write(
        "PUT", "/providers/{provider}/calendars/{calendar}", lambda w: CALENDAR
    ),
    "remove calendar": Write("DELETE", "/providers/{provider}/calendars/{calendar}"),
    "provider cancels": Write("POST", "/providers/{provider}/reservations/{held}/cancel"),
    "provider moves": Write(
        "POST",
        "/providers/{provider}/reservations/{held}/reschedule",
        lambda w: {"slot_id": w.free_slot},
    ),
    "cancel session": Write("POST", "/providers/{provider}/sessions/{session}/cancel"),
    "provider cancels series": Write("POST", "/providers/{provider}/series/{series}/cancel"),
    "reserve": Write("POST", "/clients/{client}/reserve", lambda w: {"slot_id": w.free_slot}),
    "reserve a seat": Write(
        "POST",
        "/clients/{client}/reserve",
        lambda w: {"slot_id": w.free_slot, "appointment_type_id": w.group_type},
    ),
    "reserve a type": Write(
        "POST",
        "/clients/{client}/reserve",
        lambda w: {"slot_id": w.free_slot, "appointment_type_id": w.type},
    ),
    "series": Write(
        "POST",
        "/clients/{client}/series",
        lambda w: {"slot_id": w.free_slot, "repeat": {"count": 2}},
    ),
    "series of a type": Write(
        "POST",
        "/clients/{client}/series",
        lambda w: {"slot_id": w.free_slot, "appointment_type_id": w.type, "repeat": {"count": 2}},
    ),
    "series of seats": Write(
        "POST",
        "/clients/{client}/series",
        lambda w: {
            "slot_id": w.free_slot,
            "appointment_type_id": w.group_type,
            "repeat": {"count": 2},
        },
    ),
    "reserve with a key": Write(
        "POST", "/clients/{client}/reserve", lambda w: {"slot_id": w.free_slot}, keyed=True
    ),
    "confirm": Write("POST", "/clients/{client}/confirm", lambda w: {"reservation_id": w.held}),
    "confirm with a key": Write(
        "POST", "/clients/{client}/confirm", lambda w: {"reservation_id": w.held}, keyed=True
    ),
    "confirm series": Write("POST", "/clients/{client}/series/{series}/confirm"),
    "webhook for it": Write(
        "POST", "/webhooks", lambda w: {"url": "https://h.example.com/", "provider_id": w.provider}
    ),
}

# Every write of a client, raced with the client's deletion.
OF_CLIENT = {
    "replace client": Write("PUT", "/clients/{client}", lambda w: PERSON),
    "delete client": Write("DELETE", "/clients/{client}"),
    "reserve": OF_PROVIDER["reserve"],
    "reserve a seat": OF_PROVIDER["reserve a seat"],
    "reserve a type": OF_PROVIDER["reserve a type"],
    "series": OF_PROVIDER["series"],
    "series of a type": OF_PROVIDER["series of a type"],
    "series of seats": OF_PROVIDER["series of seats"],
    "confirm": OF_PROVIDER["confirm"],
    "confirm series": OF_PROVIDER["confirm series"],
    "cancel": Write("POST", "/clients/{client}/reservations/{held}/cancel"),
    "move": Write(
        "POST",
        "/clients/{client}/reservations/{held}/reschedule",
        lambda w: {"slot_id": w.free_slot},
    ),
    "cancel series": Write("POST", "/clients/{client}/series/{series}/cancel"),
}

# Every write of a webhook endpoint, raced with its deletion.
OF_WEBHOOK = {
    "replace webhook": Write("PUT", "/webhooks/{webhook}", lambda w: HOOK),
    "delete webhook": Write("DELETE", "/webhooks/{webhook}"),
    "ping": Write("POST", "/webhooks/{webhook}/ping"),
}


def _send(api: Api, write: Write, world: World) -> Any:
    names = {field: getattr(world, field) for field in World.__dataclass_fields__}
    path = write.path.format(**names)
    # A new key each time: the second send must do the work again, not replay.
    headers = {"Idempotency-Key": str(uuid.uuid4())} if write.keyed else {}
    return api.client.request(
        write.method, path, json=write.body(world), params=write.params(world), headers=headers
    )


def _race(
    api: Api, database_url: str, deletion: str, owner: str, write: Write, world: World
) -> Any:
    """Delete the owner in a held transaction, send the write, see it wait, commit; the
    write's answer must be the one it gets when sent after the deletion: 404."""
    with gate(database_url) as held, ThreadPoolExecutor(1) as pool:
        held.hold(deletion, uuid.UUID(owner))
        sent = pool.submit(_send, api, write, world)
        held.wait_for(1, timeout=10)
        held.commit()
        raced = sent.result(timeout=30)
    after = _send(api, write, world)
    assert (raced.status_code, raced.json()["code"]) == (after.status_code, after.json()["code"])
    assert raced.status_code == 404, raced.text
    assert raced.headers["content-type"] == "application/problem+json"
    return raced


# Writes of a type, raced with its deletion (which only marks it deleted).
OF_TYPE = {
    "replace type": OF_PROVIDER["replace type"],
    "delete type": OF_PROVIDER["delete type"],
}

# Writes onto a free slot, raced with its deletion (a withdrawal, or its provider's).
OF_SLOT = {
    name: OF_PROVIDER[name]
    for name in (
        "reserve",
        "reserve with a key",
        "reserve a type",
        "reserve a seat",
        "series",
        "series of a type",
        "series of seats",
        "provider moves",
    )
} | {"move": OF_CLIENT["move"]}

# By the World field naming the owner: its deletion, its writes, and counts that must
# be 0 after (what the write added went with the owner, or was never written).
OWNERS = {
    "provider": (
        "DELETE FROM providers WHERE id = $1",
        OF_PROVIDER,
        [f"SELECT count(*) FROM {table}" for table in ("appointment_types", "slots", "calendars")],
    ),
    "client": (
        "DELETE FROM clients WHERE id = $1",
        OF_CLIENT,
        ["SELECT count(*) FROM reservations"],
    ),
    "webhook": (
        "DELETE FROM webhook_endpoints WHERE id = $1",
        OF_WEBHOOK,
        ["SELECT count(*) FROM webhook_endpoints"],
    ),
    "free_slot": (
        "DELETE FROM slots WHERE id = $1",
        OF_SLOT,
        [f"SELECT count(*) FROM reservations WHERE start_time = '{iso(FREE)}'"],
    ),
    "type": (
        "UPDATE appointment_types SET deleted_at = now() WHERE id = $1",
        OF_TYPE,
        [
            "SELECT count(*) FROM appointment_types WHERE deleted_at IS NULL AND capacity = 1",
            "SELECT count(*) FROM appointment_types WHERE duration_minutes = 30",
        ],
    ),
}


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, (_, writes, _) in OWNERS.items() for name in writes],
)
def test_a_write_racing_its_owners_deletion_is_404(
    api: Api, database_url: str, world: World, owner: str, name: str
) -> None:
    deletion, writes, none_left = OWNERS[owner]
    _race(api, database_url, deletion, getattr(world, owner), writes[name], world)
    for count in none_left:
        assert api.sql(count)[0][0] == 0, count


def test_a_path_that_forgot_its_lock_answers_503_not_500(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The net under the locks: were a write to meet a row deleted meanwhile after all
    (here, a replace that inserts a type of a provider that does not exist, which is what
    a lost race looks like to PostgreSQL, or an ORM update that matched no row), it
    answers 503 with Retry-After, and nothing is written."""

    async def lost_race(session: AsyncSession, *_: object) -> None:
        await session.execute(
            text(
                "INSERT INTO appointment_types (id, provider_id, name, duration_minutes, "
                "buffer_before_minutes, buffer_after_minutes, change_notice_minutes, "
                "capacity, created_at, updated_at) VALUES (:id, :gone, 'x', 15, 0, 0, 0, 1, "
                "now(), now())"
            ),
            {"id": uuid.uuid4(), "gone": uuid.uuid4()},
        )

    monkeypatch.setattr(providers_service, "replace_provider", lost_race)
    response = api.client.put(f"/providers/{world.provider}", json={"name": "Dr B"})
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
    assert api.sql("SELECT count(*) FROM appointment_types")[0][0] == 2

    async def stale(*_: object) -> None:
        raise StaleDataError("UPDATE statement on table 'providers' expected to update 1 row")

    monkeypatch.setattr(providers_service, "replace_provider", stale)
    assert api.client.put(f"/providers/{world.provider}", json={"name": "Dr B"}).status_code == 503
