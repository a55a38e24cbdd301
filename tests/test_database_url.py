"""Database URLs: several PostgreSQL hosts for failover, and what counts as an outage."""

import asyncpg
import pytest

from appointments.connections import ConnectionLost
from appointments.db import async_database_url
from appointments.errors import is_transient_database_error


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://u:p@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write",
            "postgresql+asyncpg://u:p@/db?host=10.0.0.1%3A5432&host=10.0.0.2%3A5433"
            "&target_session_attrs=read-write",
        ),
        # A host without a port gets PostgreSQL's; no user, no query.
        ("postgresql://a,b:6000/db", "postgresql+asyncpg:///db?host=a%3A5432&host=b%3A6000"),
        ("postgresql://u@h:5/db", "postgresql+asyncpg://u@h:5/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_several_hosts_become_sqlalchemys_host_parameters(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


def test_no_primary_yet_and_a_lost_connection_are_outages_not_bugs() -> None:
    refused = asyncpg.TargetServerAttributeNotMatched("none of the hosts is read-write")
    assert is_transient_database_error(refused)
    assert is_transient_database_error(ConnectionLost("InternalClientError: ..."))
    assert not is_transient_database_error(ValueError("a bug"))
