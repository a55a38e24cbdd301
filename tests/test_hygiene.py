"""Request hygiene: body size limit, strict types, CORS, no internals in answers."""

from collections.abc import Iterator

from fastapi.testclient import TestClient

from appointments.main import create_app
from tests.api import Api


def test_oversized_declared_body_is_413_and_changes_nothing(api: Api) -> None:
    response = api.client.post("/providers", json={"name": "x", "email": "a" * 70_000})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert api.sql("SELECT count(*) FROM providers")[0][0] == 0


def test_oversized_streamed_body_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post(
        "/providers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_numbers_are_not_coerced_into_strings(api: Api) -> None:
    response = api.client.post("/clients", json={"name": 12, "email": "a@example.com"})
    assert response.status_code == 422
    assert api.client.post("/providers", json={"name": True}).status_code == 422


def test_validation_errors_do_not_echo_the_input(api: Api) -> None:
    secret = "tok-" + "s" * 40
    response = api.client.post("/clients", json={"name": "A", "email": secret})
    assert response.status_code == 422
    assert secret not in response.text


def test_cors_is_off_unless_origins_are_configured(api: Api) -> None:
    preflight = {
        "Origin": "https://booking.example",
        "Access-Control-Request-Method": "POST",
    }
    response = api.client.options("/providers", headers=preflight)
    assert "access-control-allow-origin" not in response.headers

    settings = api.client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"cors_origins": ["https://booking.example"]}
    )
    with TestClient(create_app(settings)) as client:
        allowed = client.options("/providers", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://booking.example"
        other = client.options(
            "/providers", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
