"""Every page route, found by walking the app, refuses visitors it is not for: the
pages' counterpart of the API's authorization matrix."""

import uuid
from collections.abc import Callable, Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient

from appointments.routes import api_routes, is_web_page
from tests.web.browser import Browser

PUBLIC_PAGES = {("GET", "/")}
# Forms anyone may post (with the session's CSRF token): they are how one signs in.
OPEN_FORMS = {"/signup", "/signin", "/signout"}
OWNED_BY = {"/book": "client", "/bookings": "client", "/provider": "provider", "/manage": "admin"}


def page_routes(client: TestClient) -> Iterator[tuple[str, str]]:
    app: FastAPI = client.app  # type: ignore[assignment]
    for route in api_routes(app):
        if is_web_page(route):
            path = (route.path_format or "").replace("{reservation_id}", str(uuid.uuid4()))
            for method in sorted(route.methods or ()):
                yield method, path


def owner(path: str) -> str:
    return next(role for prefix, role in OWNED_BY.items() if path.startswith(prefix))


def test_the_walk_finds_every_page(client: TestClient) -> None:
    routes = set(page_routes(client))
    assert len(routes) >= 18
    assert ("POST", "/book/hold") in routes
    assert ("POST", "/manage/providers") in routes


def test_anonymous_visitors_get_only_the_front_door(
    client: TestClient, new_browser: Callable[[], Browser]
) -> None:
    anonymous = new_browser()
    for method, path in page_routes(client):
        if (method, path) in PUBLIC_PAGES:
            continue
        if method == "GET":
            assert anonymous.get(path).status_code == 401, path
        elif path not in OPEN_FORMS:
            answer = anonymous.submit(path, {"slot_id": str(uuid.uuid4())})
            assert answer.status_code == 401, path


def test_no_page_post_works_without_the_csrf_token(
    client: TestClient, new_browser: Callable[[], Browser]
) -> None:
    carol = new_browser()
    carol.sign_up()
    for method, path in page_routes(client):
        if method == "POST":
            answer = carol.client.post(path, data={"name": "x", "slot_id": str(uuid.uuid4())})
            assert answer.status_code == 403, path


def test_a_client_is_kept_out_of_the_provider_and_admin_pages(
    client: TestClient, new_browser: Callable[[], Browser]
) -> None:
    carol = new_browser()
    carol.sign_up()
    for method, path in page_routes(client):
        if (method, path) in PUBLIC_PAGES or path in OPEN_FORMS or owner(path) == "client":
            continue
        if method == "GET":
            assert carol.get(path).status_code == 403, path
        else:
            assert carol.submit(path, {"name": "x"}, from_page="/bookings").status_code == 403, path
