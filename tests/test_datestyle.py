"""Times in answers PostgreSQL builds as text do not follow the server's DateStyle."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import Api, bearer, iso, service_settings
from tests.conftest import START
from tests.database_settings import database_setting

DAY = START + timedelta(days=3)


@pytest.fixture
def dmy_database(postgresql_url: str) -> Iterator[Settings]:
    """The test database with DateStyle 'SQL, DMY' for every new session."""
    with database_setting(postgresql_url, "DateStyle", "SQL, DMY"):
        yield service_settings(postgresql_url)


def test_listings_answer_iso_times_under_a_dmy_datestyle(dmy_database: Settings) -> None:
    app = create_app(dmy_database, FrozenClock(START))
    with TestClient(app, headers=bearer(Role.ADMIN, "dmy")) as client:
        api = Api(client)
        try:
            shown = api.sql("SHOW DateStyle")
            provider = api.provider()
            api.publish(provider["id"], DAY, DAY + timedelta(minutes=30))
            kind = api.appointment_type(provider["id"], duration_minutes=15)
            slots = api.slots(provider["id"])
            starts = api.start_times(provider["id"], kind["id"])
            bob = api.customer()
            held = api.reserve(bob["id"], slots[0]["id"])
        finally:
            api.reset()
    assert [slot["start_time"] for slot in slots] == [iso(DAY), iso(DAY + timedelta(minutes=15))]
    assert starts == [iso(DAY), iso(DAY + timedelta(minutes=15))]
    assert held.json()["start_time"] == iso(DAY)
    assert shown == [("ISO, YMD",)]
