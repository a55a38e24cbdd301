from collections.abc import Iterator

import pytest

from tests.busy import radicale


@pytest.fixture(scope="session")
def caldav_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[radicale.Radicale]:
    """One Radicale server per test process; each test makes its own calendar in it."""
    server = radicale.start(tmp_path_factory.mktemp("radicale"))
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
