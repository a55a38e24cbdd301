"""Set-up shared by the benchmarks and the fault run: a throwaway PostgreSQL,
the service as real worker processes, and fast seeding over asyncpg."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from appointments import migrate
from appointments.auth.tokens import Role, mint_token
from appointments.settings import Settings
from tests.postgres_server import PostgresServer, free_port, remove, start_postgres

SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
APPOINTMENTS = str(Path(sys.executable).parent / "appointments")
LOGS = Path(__file__).parent / "results"


def admin_token() -> str:
    return mint_token(Settings(jwt_secret=SECRET), Role.ADMIN, "bench", 24 * 3600)


@contextmanager
def postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    server = start_postgres(durable=durable)
    try:
        migrate.upgrade(server.url)
        yield server
    finally:
        remove(server)


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError("service exited during start-up")
            time.sleep(0.2)
        raise RuntimeError("service did not become ready")


def _env(database_url: str, settings: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        APPOINTMENTS_DATABASE_URL=database_url,
        APPOINTMENTS_MIGRATE_ON_START="false",
        APPOINTMENTS_SWEEP_INTERVAL_SECONDS="0",
        APPOINTMENTS_JWT_SECRET=SECRET,
    )
    env.update({f"APPOINTMENTS_{k.upper()}": v for k, v in settings.items()})
    return env


def _start(arguments: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    log = LOGS / log_name
    log.parent.mkdir(exist_ok=True)
    return subprocess.Popen(
        [APPOINTMENTS, *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def service(database_url: str, workers: int = 4, **settings: str) -> Iterator[Service]:
    port = free_port()
    process = _start(
        ["serve", "--port", str(port), "--workers", str(workers)],
        _env(database_url, settings),
        "service.log",
    )
    running = Service(process, port)
    try:
        running.wait_ready()
        yield running
    finally:
        _stop(process)


@contextmanager
def deliverer(database_url: str, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """`appointments deliver` as its own process."""
    process = _start(["deliver"], _env(database_url, settings), "deliver.log")
    try:
        yield process
    finally:
        _stop(process)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def status_value(pid: int, field: str) -> int:
    """A number from /proc/<pid>/status (its first word), 0 when absent or the process
    is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    return status_value(pid, "VmRSS")
