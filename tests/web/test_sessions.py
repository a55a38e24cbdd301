"""A page session signed in with a token ends when the token does; the cookie is
signed with a key of its own."""

import time
from collections.abc import Callable

import pytest
from itsdangerous import URLSafeTimedSerializer

from appointments.auth.tokens import Role
from appointments.web import pages
from appointments.web.session import COOKIE, cookie_key
from tests.api import TEST_SECRET, Api, bearer, service_settings
from tests.web.browser import Browser


def _token(role: Role, subject: str, seconds: int) -> str:
    return bearer(role, subject, ttl_seconds=seconds)["Authorization"].removeprefix("Bearer ")


def test_a_session_from_a_short_token_ends_with_it(
    api: Api, new_browser: Callable[[], Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = api.customer()
    visitor = new_browser()
    signed_in = visitor.sign_in(_token(Role.CLIENT, bob["id"], 3))
    assert signed_in.status_code == 200
    cookie = next(c for c in visitor.client.cookies.jar if c.name == COOKIE)
    assert cookie.expires is not None
    assert cookie.expires <= time.time() + 4  # not 30 days
    assert visitor.get("/bookings").status_code == 200
    # Four seconds on, the API refuses the token; the page session is over too.
    later = time.time() + 4
    monkeypatch.setattr(pages, "_now", lambda: later)
    expired = visitor.get("/bookings", follow_redirects=False)
    assert expired.status_code == 401, expired.text
    assert "Sign in as a client first." in expired.text
    assert (
        api.client.get(
            f"/clients/{bob['id']}/reservations",
            headers={"Authorization": f"Bearer {_token(Role.CLIENT, bob['id'], -10)}"},
        ).status_code
        == 401
    )


def test_a_signed_up_client_keeps_the_cookie_s_own_lifetime(
    new_browser: Callable[[], Browser],
) -> None:
    visitor = new_browser()
    visitor.sign_up()
    cookie = next(c for c in visitor.client.cookies.jar if c.name == COOKIE)
    assert cookie.expires is not None
    assert cookie.expires > time.time() + 29 * 24 * 3600


def test_the_cookie_key_is_derived_not_the_jwt_secret(new_browser: Callable[[], Browser]) -> None:
    settings = service_settings("sqlite://")
    key = cookie_key(settings)
    assert key is not None
    assert key != TEST_SECRET
    assert TEST_SECRET not in key
    visitor = new_browser()
    visitor.sign_up()
    cookie = next(c for c in visitor.client.cookies.jar if c.name == COOKIE)
    assert cookie.value is not None
    salt = "appointments.web.session"
    assert URLSafeTimedSerializer(key, salt=salt).loads(cookie.value)["role"] == "client"
    # A cookie signed with the JWT secret itself is not accepted: it signs nobody in.
    forged = URLSafeTimedSerializer(TEST_SECRET, salt=salt).dumps(
        {"csrf": "x", "role": "admin", "sub": "me", "name": "Me", "flash": None}
    )
    intruder = new_browser()
    intruder.client.cookies.set(COOKIE, forged)
    assert intruder.get("/manage", follow_redirects=False).status_code == 401
