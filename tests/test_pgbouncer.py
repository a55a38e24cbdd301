"""The service through PgBouncer 1.18 in transaction pooling (issue 14): Debian's
pgbouncer in front of the test server with fewer server connections than clients,
so statements of different requests share server connections. Every path that
sends statements straight to asyncpg or outside a transaction must still work."""

import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import bearer
from tests.live_server import create_clients, live_server, publish_ahead, run_at_once
from tests.postgres_server import free_port

ADMIN = bearer(Role.ADMIN, "pgbouncer-admin")


@contextmanager
def pgbouncer(database_url: str) -> Iterator[str]:
    """PgBouncer in transaction pooling with 3 server connections; its URL."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    target = urlsplit(database_url)
    folder = Path(tempfile.mkdtemp(prefix="appointments-pgbouncer-"))
    os.chmod(folder, 0o777)  # PgBouncer will not run as root: as root, it runs as postgres
    port = free_port()
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={target.hostname} port={target.port} user={target.username}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 3
max_client_conn = 500
logfile = {folder}/pgbouncer.log
"""
    )
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, (folder / "pgbouncer.log").read_text()
                assert time.monotonic() < deadline, "pgbouncer did not start"
                time.sleep(0.05)
        yield f"postgresql://{target.username}@127.0.0.1:{port}{target.path}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.live
def test_every_hot_path_works_through_pgbouncer_in_transaction_pooling(
    emptied_postgresql_url: str,
) -> None:
    with (
        pgbouncer(emptied_postgresql_url) as url,
        live_server(url, workers=2, db_pgbouncer="true") as base,
        httpx.Client(base_url=base, headers=ADMIN, timeout=30) as http,
    ):
        provider, slots = publish_ahead(http, "Dr Bouncer", timedelta(hours=6))
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Long", "duration_minutes": 30},
        ).json()
        clients = create_clients(http, 12)
        failures: list[str] = []

        def visitor(number: int) -> None:
            """Listings, then a reserve and a confirm without a key and one with a key."""
            with httpx.Client(base_url=base, headers=ADMIN, timeout=30) as own:
                for _ in range(5):
                    for path in (
                        f"/providers/{provider['id']}/availability",
                        f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability",
                        f"/providers/{provider['id']}",
                    ):
                        answer = own.get(path)
                        if answer.status_code != 200:
                            failures.append(f"GET {path}: {answer.status_code} {answer.text}")
                client = clients[number]["id"]
                for slot, key in ((slots[2 * number], None), (slots[2 * number + 1], "k")):
                    headers = {"Idempotency-Key": f"{key}-{number}"} if key else {}
                    held = own.post(
                        f"/clients/{client}/reserve", json={"slot_id": slot["id"]}, headers=headers
                    )
                    if held.status_code != 201:
                        failures.append(f"reserve: {held.status_code} {held.text}")
                        continue
                    done = own.post(
                        f"/clients/{client}/confirm",
                        json={"reservation_id": held.json()["id"]},
                        headers=headers,
                    )
                    if done.status_code != 200:
                        failures.append(f"confirm: {done.status_code} {done.text}")

        run_at_once([functools.partial(visitor, n) for n in range(12)])
        assert failures == []
        confirmed = http.get(
            f"/providers/{provider['id']}/availability", params={"status": "confirmed"}
        ).json()["items"]
        assert len(confirmed) == 24
