"""A cookie-keeping HTTP client that uses the pages the way a browser's forms do."""

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    def __init__(self, app_client: TestClient) -> None:
        # The app client's transport (its running event loop and connection pool),
        # but a cookie jar and headers of our own: a separate visitor.
        self.client = httpx.Client(
            transport=app_client._transport,
            base_url=str(app_client.base_url),
            follow_redirects=True,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def csrf(self, path: str = "/") -> str:
        match = CSRF.search(self.get(path).text)
        assert match is not None, "the page has no form"
        return match.group(1)

    def submit(
        self, path: str, data: dict[str, Any] | None = None, *, from_page: str = "/"
    ) -> httpx.Response:
        """POST a form with the CSRF token of `from_page`, following the redirect."""
        form = {"csrf_token": self.csrf(from_page), **(data or {})}
        return self.client.post(path, data=form)

    def sign_up(self, name: str = "Carol", email: str = "carol@example.com") -> httpx.Response:
        response = self.submit("/signup", {"name": name, "email": email})
        assert response.status_code == 200, response.text
        return response

    def sign_in(self, token: str) -> httpx.Response:
        return self.submit("/signin", {"token": token})
