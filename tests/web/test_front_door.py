"""The anonymous front door: public sign-up is a setting, and sign-up and sign-in
posts are limited per address in the database that every process shares."""

from collections.abc import Callable

from fastapi.testclient import TestClient

from appointments.clock import FrozenClock
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import Api
from tests.web.browser import Browser


def test_sign_up_closed_refuses_and_hides_the_form(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    api.configure(public_signup=False)
    visitor = new_browser()
    assert 'action="/signup"' not in visitor.get("/").text
    refused = visitor.submit("/signup", {"name": "Carol", "email": "carol@example.com"})
    assert refused.status_code == 403
    assert "Sign-up is closed here" in refused.text
    assert api.sql("SELECT count(*) FROM clients") == [(0,)]
    assert 'action="/signin"' in visitor.get("/").text


def test_sign_up_is_open_by_default_only_locally() -> None:
    assert Settings(environment="local").signup_is_open()
    assert not Settings(environment="production", jwt_secret="x" * 40).signup_is_open()
    assert Settings(environment="production", public_signup=True).signup_is_open()


def test_anonymous_posts_past_the_limit_are_429_until_the_minute_is_over(
    api: Api, new_browser: Callable[[], Browser], clock: FrozenClock
) -> None:
    api.configure(page_posts_per_minute=3)
    visitor = new_browser()
    for _ in range(3):
        assert visitor.sign_in("not-a-token").status_code == 401
    limited = visitor.sign_in("not-a-token")
    assert limited.status_code == 429, limited.text
    assert limited.headers["retry-after"] == "60"
    assert "too many attempts from this address" in limited.text
    signup = visitor.submit("/signup", {"name": "Carol", "email": "carol@example.com"})
    assert signup.status_code == 429
    assert api.sql("SELECT count(*) FROM clients") == [(0,)]
    clock.advance(seconds=45)
    assert visitor.sign_in("not-a-token").headers["retry-after"] == "15"
    clock.advance(seconds=15)
    assert visitor.sign_in("not-a-token").status_code == 401


def test_the_count_is_shared_by_every_process_on_the_database(
    api: Api, new_browser: Callable[[], Browser], settings: Settings, clock: FrozenClock
) -> None:
    """A second app on the same database (another process, as far as the count can
    tell) sees the first one's posts."""
    api.configure(page_posts_per_minute=3)
    first = new_browser()
    assert first.sign_in("nope").status_code == 401
    assert first.sign_in("nope").status_code == 401
    other_app = create_app(settings.model_copy(update={"page_posts_per_minute": 3}), clock)
    with TestClient(other_app, raise_server_exceptions=False) as other:
        second = Browser(other)
        assert second.sign_in("nope").status_code == 401
        assert second.sign_in("nope").status_code == 429
    assert first.sign_in("nope").status_code == 429
