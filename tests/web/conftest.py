from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.web.browser import Browser


@pytest.fixture
def browser(client: TestClient) -> Browser:
    """A second, anonymous client on the same app (the `client` fixture is an admin)."""
    return Browser(client)


@pytest.fixture
def new_browser(client: TestClient) -> Callable[[], Browser]:
    return lambda: Browser(client)
