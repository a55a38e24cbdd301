import pytest
from fastapi.testclient import TestClient

from appointments.auth.tokens import Role
from appointments.main import create_app
from tests.api import Api, bearer, service_settings


def test_health_and_readiness(api: Api) -> None:
    assert api.ok("GET", "/healthz") == {"status": "ok"}
    assert api.ok("GET", "/readyz") == {"status": "ok"}


def test_unknown_route_is_a_404_problem(api: Api) -> None:
    response = api.client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    wrong_method = api.client.patch("/providers")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


def test_swagger_ui_and_openapi_document_are_served(api: Api) -> None:
    assert "swagger" in api.client.get("/api-docs").text.lower()
    document = api.ok("GET", "/openapi.json")
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    reserve = document["paths"]["/clients/{client_id}/reserve"]["post"]["responses"]
    assert set(reserve) >= {"201", "404", "409", "422"}
    for status in ("404", "409", "422"):
        assert "application/problem+json" in reserve[status]["content"]


@pytest.mark.parametrize(
    "unreachable",
    ["postgresql://postgres@127.0.0.1:1/postgres", "sqlite:////nonexistent/dir/x.db"],
)
def test_unreachable_database_answers_503_problem(unreachable: str) -> None:
    settings = service_settings(unreachable)
    with TestClient(create_app(settings), headers=bearer(Role.ADMIN, "a")) as client:
        assert client.get("/healthz").status_code == 200
        for method, path in (("GET", "/readyz"), ("GET", "/providers"), ("POST", "/providers")):
            response = client.request(method, path, json={"name": "x"})
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            assert response.json()["code"] == "database_unavailable"


def test_every_operation_declares_503_except_liveness(api: Api) -> None:
    document = api.ok("GET", "/openapi.json")
    for path, item in document["paths"].items():
        for operation in item.values():
            assert ("503" in operation["responses"]) is (path not in ("/healthz", "/metrics")), path
