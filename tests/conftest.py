"""Fixtures: every API test runs once on SQLite and once on a throwaway PostgreSQL.

The schema comes from the Alembic migrations, applied once per database per run;
each test then starts from empty tables.
"""

import asyncio
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from appointments import migrate
from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests import postgres_server
from tests.api import EMPTY_EVERY_TABLE, Api, bearer, service_settings
from tests.busy import radicale
from tests.busy.feeds import Feeds

# A Monday, far from any daylight-saving change; the frozen clock starts here.
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A migrated PostgreSQL database: `APPOINTMENTS_TEST_POSTGRES_URL`, or a server we start."""
    given = os.environ.get("APPOINTMENTS_TEST_POSTGRES_URL")
    if given:
        migrate.upgrade(given)
        yield given
        return
    server = postgres_server.start_postgres()
    try:
        migrate.upgrade(server.url)
        yield server.url
    finally:
        postgres_server.remove(server)


@pytest.fixture
def feeds() -> Iterator[Feeds]:
    """A local HTTP server for calendar feeds; each test sets its answers."""
    served = Feeds()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()


@pytest.fixture(scope="session")
def caldav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[radicale.Radicale]:
    """A real CalDAV server (Radicale) per test process; each test makes its own calendar."""
    server = radicale.start(tmp_path_factory.mktemp("radicale"))
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


@pytest.fixture
def emptied_postgresql_url(postgresql_url: str) -> Iterator[str]:
    """The shared PostgreSQL database for a test that writes to it through a live
    server (not through `api`): emptied afterwards, so later tests start clean."""
    yield postgresql_url

    async def empty() -> None:
        connection = await asyncpg.connect(postgresql_url.replace("+asyncpg", ""))
        try:
            await connection.execute(EMPTY_EVERY_TABLE)
        finally:
            await connection.close()

    asyncio.run(empty())


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "appointments.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return service_settings(database_url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    """An HTTP client on the app in-process; tables are emptied after the test."""
    app = create_app(settings, clock)
    admin = bearer(Role.ADMIN, "test-admin")
    with TestClient(app, raise_server_exceptions=False, headers=admin) as test_client:
        try:
            yield test_client
        finally:
            Api(test_client).reset()


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    # Keep the slow live-server tests last so quick failures show first.
    items.sort(key=lambda item: "live" in item.keywords)
