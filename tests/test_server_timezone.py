"""Answers do not follow the server's TimeZone: the service's sessions run in UTC, so
an interval of days the service sends (a series' later weeks, a scan's reach) is
whole days of 24 hours, never a calendar day of the server's zone."""

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import pytest
from fastapi.testclient import TestClient

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import Api, bearer, every_start_page, iso, service_settings
from tests.appointment_types.test_start_times_dst import CASES, oracle, setup
from tests.conftest import START


async def _set_timezone(url: str, value: str | None) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        database = await connection.fetchval("SELECT current_database()")
        if value is None:
            await connection.execute(f'ALTER DATABASE "{database}" RESET TimeZone')
        else:
            await connection.execute(f"ALTER DATABASE \"{database}\" SET TimeZone = '{value}'")
    finally:
        await connection.close()


@pytest.fixture
def berlin_database(postgresql_url: str) -> Iterator[Settings]:
    """The test database with TimeZone 'Europe/Berlin' for every new session."""
    asyncio.run(_set_timezone(postgresql_url, "Europe/Berlin"))
    try:
        yield service_settings(postgresql_url)
    finally:
        asyncio.run(_set_timezone(postgresql_url, None))


@pytest.mark.parametrize("name", ["berlin-shifted", "berlin-across", "berlin-autumn-later-week"])
def test_series_start_times_under_a_server_in_berlin(berlin_database: Settings, name: str) -> None:
    """Weeks across Berlin's changes, with the server's own zone Berlin too: the listed
    series starts are the wall-clock rule's, as on a server in UTC."""
    case = CASES[name]
    app = create_app(berlin_database, FrozenClock(START))
    with TestClient(app, headers=bearer(Role.ADMIN, "tz")) as client:
        api = Api(client)
        try:
            shown = api.sql("SHOW TimeZone")
            provider, kind = setup(api, case)
            query = {
                "from": iso(case.first - timedelta(days=1)),
                "to": iso(case.first + timedelta(days=1, hours=case.hours)),
            }
            expected = oracle(api, case, provider, kind, query)
            repeat = {"repeat_count": case.count, "repeat_interval_weeks": case.interval}
            listed = every_start_page(api, provider["id"], kind["id"], 100, **query, **repeat)
        finally:
            api.reset()
    assert expected
    assert listed == expected
    assert shown == [("UTC",)]
