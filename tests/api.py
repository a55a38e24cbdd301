"""A thin, typed helper over the HTTP API and the database, so tests read as behaviour."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.auth.tokens import Role, mint_token
from appointments.notifications.worker import Deliverer, Round
from appointments.settings import Settings

Json = dict[str, Any]
T = TypeVar("T")

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


# Children first.
EMPTY_EVERY_TABLE = (
    "DELETE FROM deliveries; DELETE FROM events; DELETE FROM webhook_endpoints; "
    "DELETE FROM idempotency_keys; DELETE FROM reservation_slots; "
    "DELETE FROM reservations; DELETE FROM group_sessions; DELETE FROM slots; "
    "DELETE FROM appointment_types; DELETE FROM time_off; DELETE FROM schedule_overrides; "
    "DELETE FROM schedules; DELETE FROM busy_intervals; DELETE FROM calendars; "
    "DELETE FROM clients; DELETE FROM providers; DELETE FROM rate_windows"
)


def service_settings(database_url: str) -> Settings:
    """Settings of the service under test: no background sweeper, a known token secret."""
    return Settings(
        database_url=database_url,
        sweep_interval_seconds=0,
        delivery_interval_seconds=0,
        calendar_sync_seconds=0,
        migrate_on_start=False,
        jwt_secret=TEST_SECRET,
        log_json=False,
    )


def bearer(role: Role, subject: str, ttl_seconds: int = 3600) -> dict[str, str]:
    """An Authorization header with a token the test service accepts."""
    settings = Settings(jwt_secret=TEST_SECRET)
    return {"Authorization": f"Bearer {mint_token(settings, role, subject, ttl_seconds)}"}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    # --- plumbing -----------------------------------------------------------
    @property
    def dialect(self) -> str:
        name: str = self.client.app.state.engine.dialect.name  # type: ignore[attr-defined]
        return name

    def db_id(self, value: str) -> Any:
        """An id as the database stores it (native uuid on PostgreSQL, 32 hex on SQLite)."""
        parsed = uuid.UUID(value)
        return parsed.hex if self.dialect == "sqlite" else parsed

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def in_session(self, step: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `step` in a session of the app's own engine (inside its event loop),
        commit, and return what it returned."""
        sessionmaker: async_sessionmaker[AsyncSession] = self.client.app.state.sessionmaker  # type: ignore[attr-defined]

        async def run() -> T:
            async with sessionmaker() as session:
                result = await step(session)
                await session.commit()
                return result

        portal = self.client.portal
        assert portal is not None, "use the client inside its context manager"
        return portal.call(run)

    def sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run SQL on the app's own engine (inside its event loop); return the rows."""

        async def run(session: AsyncSession) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = []
            for part in statement.split(";"):
                if part.strip():
                    result = await session.execute(text(part), params)
                    if getattr(result, "returns_rows", False):
                        rows = [tuple(row) for row in result.all()]
            return rows

        return self.in_session(run)

    def configure(self, **changes: Any) -> None:
        """Change the running service's settings (what its requests and workers read)."""
        app: Any = self.client.app
        app.state.settings = app.state.settings.model_copy(update=changes)

    def deliver(self) -> Round:
        """One round of the notification worker, on the service's clock and settings."""
        app: Any = self.client.app

        async def run() -> Round:
            deliverer = Deliverer(app.state.sessionmaker, app.state.settings, app.state.clock)
            try:
                return await deliverer.run_once()
            finally:
                await deliverer.close()

        portal = self.client.portal
        assert portal is not None, "use the client inside its context manager"
        return portal.call(run)

    def reset(self) -> None:
        """Empty every table (children first)."""
        self.sql(EMPTY_EVERY_TABLE)

    # --- resources ----------------------------------------------------------
    def provider(self, name: str = "Dr Ada", **fields: Any) -> Json:
        result: Json = self.ok("POST", "/providers", 201, json={"name": name, **fields})
        return result

    def customer(self, name: str = "Bob", email: str = "bob@example.com", **fields: Any) -> Json:
        result: Json = self.ok(
            "POST", "/clients", 201, json={"name": name, "email": email, **fields}
        )
        return result

    def publish(self, provider_id: str, start: datetime, end: datetime) -> Json:
        result: Json = self.ok(
            "POST",
            f"/providers/{provider_id}/availability",
            201,
            json={"start_time": iso(start), "end_time": iso(end)},
        )
        return result

    def slot(self, provider_id: str, start: datetime) -> Json:
        """Publish one slot starting at `start` and return it."""
        created = self.publish(provider_id, start, start + timedelta(minutes=15))
        assert len(created["slots"]) == 1
        slot: Json = created["slots"][0]
        return slot

    def reserve(self, client_id: str, slot_id: str) -> Any:
        return self.client.post(f"/clients/{client_id}/reserve", json={"slot_id": slot_id})

    def confirm(self, client_id: str, reservation_id: str) -> Any:
        return self.client.post(
            f"/clients/{client_id}/confirm", json={"reservation_id": reservation_id}
        )

    def slots(self, provider_id: str, **query: Any) -> list[Json]:
        page: Json = self.ok("GET", f"/providers/{provider_id}/availability", params=query)
        items: list[Json] = page["items"]
        return items

    def live_reservations(self, slot_id: str) -> int:
        rows = self.sql(
            "SELECT count(*) FROM reservations WHERE slot_id = :slot "
            "AND status IN ('held', 'confirmed')",
            slot=self.db_id(slot_id),
        )
        return int(rows[0][0])

    # --- appointments of any length -----------------------------------------
    def appointment_type(self, provider_id: str, **fields: Any) -> Json:
        body = {"name": "Consultation", "duration_minutes": 45, **fields}
        result: Json = self.ok(
            "POST", f"/providers/{provider_id}/appointment-types", 201, json=body
        )
        return result

    def reserve_type(self, client_id: str, slot_id: str, type_id: str) -> Any:
        return self.client.post(
            f"/clients/{client_id}/reserve",
            json={"slot_id": slot_id, "appointment_type_id": type_id},
        )

    def start_times(self, provider_id: str, type_id: str, **query: Any) -> list[str]:
        """Every bookable start time of the type (walking all pages), as ISO strings."""
        path = f"/providers/{provider_id}/appointment-types/{type_id}/availability"
        starts: list[str] = []
        cursor = None
        while True:
            params = {**query, **({"cursor": cursor} if cursor else {})}
            page: Json = self.ok("GET", path, params=params)
            starts.extend(item["start_time"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return starts

    def slot_states(self, provider_id: str) -> dict[str, str]:
        """Every slot of the provider: start time -> status as the API shows it."""
        items = self.slots(provider_id, status="all", limit=1000)
        return {item["start_time"]: item["status"] for item in items}

    def slot_at(self, provider_id: str, start: datetime) -> str:
        """The id of the provider's slot starting at `start`."""
        for item in self.slots(provider_id, status="all", limit=1000):
            if item["start_time"] == iso(start):
                return str(item["id"])
        raise AssertionError(f"no slot at {start}")

    def links(self) -> int:
        return int(self.sql("SELECT count(*) FROM reservation_slots")[0][0])


def every_item(api: Api, path: str, limit: int, **query: object) -> list[Json]:
    """The items of every page of `limit` of a listing, following the cursors; each
    page full but the last."""
    found: list[Json] = []
    cursor: str | None = None
    while True:
        params = {"limit": limit, **query} | ({"cursor": cursor} if cursor else {})
        page = api.ok("GET", path, params=params)
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found
        assert len(page["items"]) == limit, (limit, page)


def every_start_page(
    api: Api, provider_id: str, type_id: str, limit: int, **query: object
) -> list[str]:
    """The start times of every page of `limit` of a type's listing (`every_item`)."""
    path = f"/providers/{provider_id}/appointment-types/{type_id}/availability"
    return [item["start_time"] for item in every_item(api, path, limit, **query)]
