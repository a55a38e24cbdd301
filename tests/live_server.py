"""Run the real service as separate processes (`appointments serve`) for race tests."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TypeVar

import httpx

from tests.api import TEST_SECRET, Json, iso
from tests.postgres_server import free_port

T = TypeVar("T")

APPOINTMENTS = str(Path(sys.executable).parent / "appointments")


def service_env(database_url: str, **settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env["APPOINTMENTS_DATABASE_URL"] = database_url
    env["APPOINTMENTS_MIGRATE_ON_START"] = "false"
    env["APPOINTMENTS_SWEEP_INTERVAL_SECONDS"] = "0"
    env["APPOINTMENTS_DELIVERY_INTERVAL_SECONDS"] = "0"
    env["APPOINTMENTS_JWT_SECRET"] = TEST_SECRET
    env.update({f"APPOINTMENTS_{key.upper()}": value for key, value in settings.items()})
    return env


def start_service(
    database_url: str, log: IO[bytes], workers: int = 2, **settings: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `appointments serve` in its own process group; return it once it is ready.

    Killing the group (`os.killpg`) takes the worker processes down with it.
    """
    port = free_port()
    process = subprocess.Popen(
        [APPOINTMENTS, "serve", "--port", str(port), "--workers", str(workers)],
        env=service_env(database_url, **settings),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"service did not start:\n{log.read().decode()[-4000:]}")
        time.sleep(0.1)


@contextmanager
def live_server(database_url: str, workers: int = 2, **settings: str) -> Iterator[str]:
    """Start `appointments serve` with several worker processes; yield its base URL."""
    # A file, not a pipe: the service logs every request, and a pipe nobody reads
    # fills up and blocks the server.
    log = tempfile.TemporaryFile()
    process: subprocess.Popen[bytes] | None = None
    try:
        process, base = start_service(database_url, log, workers, **settings)
        try:
            yield base
        except BaseException:
            # The server's own account of a failed test (tracebacks of any 500).
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-8000:])
            raise
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def run_at_once(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run every task in its own thread, all released at the same instant; return their
    results in order. An exception (a failed assert) in any task is raised here."""
    barrier = threading.Barrier(len(tasks))

    def start(task: Callable[[], T]) -> T:
        barrier.wait(timeout=60)
        return task()

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(start, task) for task in tasks]
        return [future.result() for future in futures]


def start_all(pool: ThreadPoolExecutor, tasks: Sequence[Callable[[], T]]) -> list[Future[T]]:
    """Start every task on the pool; the caller gates them and collects `.result()`."""
    return [pool.submit(task) for task in tasks]


def next_quarter_hour(after: datetime) -> datetime:
    base = after.replace(minute=0, second=0, microsecond=0)
    return base + timedelta(minutes=15 * (after.minute // 15 + 1))


def publish_ahead(http: httpx.Client, name: str, length: timedelta) -> tuple[Json, list[Json]]:
    """Create a provider with a window of slots three days ahead (past any notice)."""
    provider: Json = http.post("/providers", json={"name": name}).json()
    start = next_quarter_hour(datetime.now(UTC) + timedelta(days=3))
    slots: list[Json] = http.post(
        f"/providers/{provider['id']}/availability",
        json={"start_time": iso(start), "end_time": iso(start + length)},
    ).json()["slots"]
    return provider, slots


def create_clients(http: httpx.Client, count: int) -> list[Json]:
    return [
        http.post("/clients", json={"name": f"C{i}", "email": f"c{i}@example.com"}).json()
        for i in range(count)
    ]
