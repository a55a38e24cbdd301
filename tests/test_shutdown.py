"""Start-up waits for the database a bounded time; SIGTERM drains in-flight requests."""

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import bearer
from tests.live_server import APPOINTMENTS, service_env
from tests.postgres_server import free_port


@pytest.mark.live
def test_start_up_gives_up_after_the_bounded_wait(tmp_path: Path) -> None:
    env = service_env("postgresql://nobody@127.0.0.1:1/none", db_wait_seconds="1")
    began = time.monotonic()
    done = subprocess.run([APPOINTMENTS, "migrate"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert time.monotonic() - began < 15
    assert "retrying" in done.stderr


@pytest.mark.live
def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/drain.db"
    env = service_env(url)
    subprocess.run([APPOINTMENTS, "migrate"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [APPOINTMENTS, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port)
        body = json.dumps({"name": "Drained"}).encode()
        head = (
            f"POST /providers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {bearer(Role.ADMIN, 'ops')['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(head + body[:5])  # the request is now in flight
            time.sleep(0.3)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.poll() is None, "the server quit with a request in flight"
            sock.sendall(body[5:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        # uvicorn exits after draining, re-raising the signal it caught.
        assert server.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start")
