"""Every way a bearer token can be unusable answers 401 problem+json with a challenge."""

import asyncio
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from appointments.auth.tokens import LEEWAY_SECONDS, ConfigurationError, TokenVerifier
from appointments.main import create_app
from appointments.settings import Settings
from tests.api import TEST_SECRET, Api
from tests.live_server import APPOINTMENTS


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "ops",
        "role": "admin",
        "iss": "appointments",
        "aud": "appointments",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def hs256(**overrides: Any) -> str:
    return jwt.encode(claims(**overrides), TEST_SECRET, algorithm="HS256")


def assert_unauthorized(response: Any, *, challenge_error: bool = True) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="appointments"')
    assert ('error="invalid_token"' in challenge) is challenge_error


def test_valid_token_is_accepted(api: Api) -> None:
    response = api.client.get("/providers", headers={"Authorization": f"Bearer {hs256()}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "bearer"],
)
def test_missing_token_is_401(api: Api, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    client = TestClient(api.client.app)
    with client:
        response = client.get("/providers", headers=headers)
    assert_unauthorized(response, challenge_error=False)


def _tampered() -> str:
    header, _payload, signature = hs256().split(".")
    forged = jwt.utils.base64url_encode(json.dumps(claims(sub="root")).encode()).decode()
    return ".".join((header, forged, signature))


# Each token is made when its test runs (not at collection, when an expiry would
# already be counting down), and each refusal must give its own reason: a token
# refused for the wrong reason passes no test here.
UNUSABLE: list[tuple[str, Callable[[], str], str]] = [
    ("garbage", lambda: "not-a-jwt", "token rejected: Not enough segments"),
    ("three garbage parts", lambda: "a.b.c", "token rejected: Invalid header padding"),
    ("tampered payload", _tampered, "token rejected: Signature verification failed"),
    (
        "wrong secret",
        lambda: jwt.encode(claims(), "another-secret-" * 4, algorithm="HS256"),
        "token rejected: Signature verification failed",
    ),
    (
        "expired",
        lambda: hs256(exp=int(time.time()) - LEEWAY_SECONDS - 30),
        "token has expired",
    ),
    ("wrong audience", lambda: hs256(aud="someone-else"), "token rejected: Audience doesn't match"),
    ("wrong issuer", lambda: hs256(iss="https://evil.example"), "token rejected: Invalid issuer"),
    ("no subject", lambda: hs256(sub=None), "token rejected: Token is missing the 'sub' claim"),
    ("empty subject", lambda: hs256(sub=""), "token subject is missing or invalid"),
    ("no role", lambda: hs256(role=None), "token rejected: Token is missing the 'role' claim"),
    ("unknown role", lambda: hs256(role="superuser"), "token role must be admin, provider or"),
    ("no expiry", lambda: hs256(exp=None), "token rejected: Token is missing the 'exp' claim"),
    (
        "alg none",
        lambda: jwt.encode(claims(), "", algorithm="none"),
        "token rejected: The specified alg value is not allowed",
    ),
]


@pytest.mark.parametrize(("name", "make", "reason"), UNUSABLE, ids=[u[0] for u in UNUSABLE])
def test_unusable_tokens_are_401(api: Api, name: str, make: Callable[[], str], reason: str) -> None:
    token = make()
    response = api.client.get("/providers", headers={"Authorization": f"Bearer {token}"})
    assert_unauthorized(response)
    assert response.json()["detail"].startswith(reason), (name, response.json()["detail"])
    assert token not in response.text


def test_expiry_allows_five_seconds_of_clock_skew(api: Api) -> None:
    just_expired = hs256(exp=int(time.time()) - 2)
    response = api.client.get("/providers", headers={"Authorization": f"Bearer {just_expired}"})
    assert response.status_code == 200


def test_unauthenticated_writes_change_nothing(api: Api) -> None:
    anonymous = TestClient(api.client.app)
    with anonymous:
        response = anonymous.post("/providers", json={"name": "Sneaky"})
    assert_unauthorized(response, challenge_error=False)
    assert api.sql("SELECT count(*) FROM providers")[0][0] == 0


def test_health_and_docs_need_no_token(api: Api) -> None:
    anonymous = TestClient(api.client.app)
    with anonymous:
        for path in ("/healthz", "/readyz", "/openapi.json", "/api-docs"):
            assert anonymous.get(path).status_code == 200, path


def test_openapi_declares_the_bearer_scheme(api: Api) -> None:
    document = api.ok("GET", "/openapi.json")
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["HTTPBearer"]["description"],
    }
    assert document["paths"]["/providers"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


# --- production key types ---------------------------------------------------------


@pytest.fixture(params=["RS256", "ES256"])
def key_pair(request: pytest.FixtureRequest) -> tuple[str, Any, str]:
    algorithm: str = request.param
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return algorithm, private, public_pem


def _verify(settings: Settings, token: str) -> Any:
    import anyio

    return anyio.run(TokenVerifier(settings).verify, token)


def test_public_key_verifies_identity_provider_tokens(key_pair: tuple[str, Any, str]) -> None:
    algorithm, private, public_pem = key_pair
    settings = Settings(
        environment="production",
        jwt_public_key=public_pem,
        jwt_issuer="https://idp.example",
        jwt_audience="booking",
    )
    good = jwt.encode(
        claims(iss="https://idp.example", aud="booking", role="client", sub="c-1"),
        private,
        algorithm=algorithm,
    )
    principal = _verify(settings, good)
    assert (principal.role, principal.subject) == ("client", "c-1")
    # An HS256 token "signed" with the public key text must not pass (algorithm confusion).
    confused = jwt.encode(claims(iss="https://idp.example", aud="booking"), "x" * 40)
    with pytest.raises(Exception, match="token rejected"):
        _verify(settings, confused)


@pytest.fixture
def jwks_server(key_pair: tuple[str, Any, str]) -> Iterator[tuple[str, Any, str]]:
    """An identity provider's JWKS endpoint, on loopback."""
    algorithm, private, _ = key_pair
    jwk = json.loads(
        jwt.algorithms.get_default_algorithms()[algorithm].to_jwk(private.public_key())
    )
    jwk.update({"kid": "key-1", "use": "sig", "alg": algorithm})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield algorithm, private, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_jwks_url_verifies_tokens_by_key_id(jwks_server: tuple[str, Any, str]) -> None:
    algorithm, private, url = jwks_server
    settings = Settings(environment="production", jwt_jwks_url=url)
    token = jwt.encode(claims(), private, algorithm=algorithm, headers={"kid": "key-1"})
    assert _verify(settings, token).subject == "ops"
    unknown_kid = jwt.encode(claims(), private, algorithm=algorithm, headers={"kid": "key-9"})
    with pytest.raises(Exception, match="token key not usable"):
        _verify(settings, unknown_kid)


def test_production_refuses_weak_or_missing_keys() -> None:
    for secret in ("changeme", "short"):
        with pytest.raises(ConfigurationError):
            TokenVerifier(Settings(environment="production", jwt_secret=secret))
    with pytest.raises(ConfigurationError):
        TokenVerifier(Settings(environment="production"))
    with pytest.raises(ConfigurationError):
        create_app(Settings(environment="production", database_url="sqlite:///x.db"))


def test_local_install_generates_its_secret_once(tmp_path: Path) -> None:
    settings = Settings(jwt_secret_file=str(tmp_path / "secret"))
    first = TokenVerifier(settings)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    secret = (tmp_path / "secret").read_text()
    assert len(secret) >= 48
    TokenVerifier(settings)
    assert (tmp_path / "secret").read_text() == secret
    assert first is not None


@pytest.mark.live
def test_token_command_mints_a_token_the_service_accepts(tmp_path: Path) -> None:
    done = subprocess.run(
        [APPOINTMENTS, "token", "--role", "provider", "--subject", "p-1", "--ttl", "60"],
        env={"APPOINTMENTS_JWT_SECRET": TEST_SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    principal = _verify(Settings(jwt_secret=TEST_SECRET), done.stdout.strip())
    assert (principal.role, principal.subject) == ("provider", "p-1")
    decoded = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 60
    refused = subprocess.run(
        [APPOINTMENTS, "token", "--role", "root", "--subject", "x"],
        env={"APPOINTMENTS_JWT_SECRET": TEST_SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0


def test_verified_tokens_are_cached_until_they_expire_and_the_cache_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import appointments.auth.tokens as tokens

    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    verifier = TokenVerifier(Settings(environment="local", jwt_secret=TEST_SECRET))
    expires = int(time.time()) + 600
    token = hs256(exp=expires, sub="c-9", role="client")

    def verify(value: str) -> Any:
        return asyncio.run(verifier.verify(value))

    first = verify(token)
    assert verify(token) == first
    assert decoded == [token]  # the second call took the cached answer
    # A bad token is never cached, whatever came before.
    with pytest.raises(Exception, match="token rejected"):
        verify(token + "x")
    # Past its exp the token is checked again, not served from the cache.
    with monkeypatch.context() as later:
        later.setattr(time, "time", lambda: expires + 1.0)
        verify(token)
    assert decoded.count(token) == 2

    monkeypatch.setattr(tokens, "CACHE_SIZE", 4)
    others = [hs256(sub=f"c-{i}", role="client") for i in range(6)]
    for other in others:
        verify(other)
    assert len(verifier._verified) <= 4
    assert others[-1] in verifier._verified
