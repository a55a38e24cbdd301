"""Answers do not follow the server's TimeZone: the service's sessions run in UTC, so
an interval of days the service sends (a series' later weeks, a scan's reach) is
whole days of 24 hours, never a calendar day of the server's zone."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import Api, bearer, every_start_page, service_settings
from tests.appointment_types.test_start_times_dst import CASES, oracle, setup
from tests.conftest import START
from tests.database_settings import database_setting


@pytest.fixture
def berlin_database(postgresql_url: str) -> Iterator[Settings]:
    """The test database with TimeZone 'Europe/Berlin' for every new session."""
    with database_setting(postgresql_url, "TimeZone", "Europe/Berlin"):
        yield service_settings(postgresql_url)


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
            expected = oracle(api, case, provider, kind, case.query())
            series = {**case.query(), **case.series()}
            listed = every_start_page(api, provider["id"], kind["id"], 100, **series)
        finally:
            api.reset()
    assert expected
    assert listed == expected
    assert shown == [("UTC",)]
