"""The start-up guard sees every route, including those inside included routers."""

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from appointments.auth.policy import authorize, check_every_route_has_a_rule
from appointments.main import create_app
from appointments.settings import Settings


def test_the_real_app_passes_and_its_routes_are_all_seen(settings: Settings) -> None:
    app = create_app(settings)
    check_every_route_has_a_rule(app)  # create_app ran it too; it must not be vacuous:
    extra = APIRouter()

    @extra.get("/not-in-the-policy")
    async def unknown() -> None:
        return None

    app.include_router(extra, dependencies=[Depends(authorize)])
    with pytest.raises(RuntimeError, match="no authorization rule for GET /not-in-the-policy"):
        check_every_route_has_a_rule(app)


def test_a_route_with_a_rule_but_without_the_guard_is_refused() -> None:
    app = FastAPI()
    unguarded = APIRouter(prefix="/clients")

    @unguarded.get("")
    async def everyone() -> None:
        return None

    app.include_router(unguarded)  # no Depends(authorize)
    with pytest.raises(RuntimeError, match="GET /clients does not enforce its rule"):
        check_every_route_has_a_rule(app)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/providers", "GET, POST"),
        ("PUT", "/healthz", "GET"),
        ("PATCH", "/providers/any/availability", "DELETE, GET, POST, PUT"),
        ("PUT", "/clients/any/reserve", "POST"),
    ],
)
def test_405_names_every_method_the_path_offers(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"
