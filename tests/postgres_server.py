"""A throwaway PostgreSQL server for the test run, started from the local binaries.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
user (via runuser) with its data directory in a fresh temporary folder.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL binaries not found; run scripts/test, which installs them")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    # Fault tests kill the server and count on every acknowledged commit surviving.
    durable: bool = False

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        )
        if not self.durable:
            # Durability is irrelevant for a throwaway test server; speed is not.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self.pg_ctl("-w", "-t", "60", "-l", str(self.root / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "immediate", "stop")

    def crash_restart(self) -> None:
        """Kill the server the hard way (no checkpoint) and start it again; it recovers."""
        self.pg_ctl(
            "-w", "-t", "60", "-l", str(self.root / "server.log"), "-m", "immediate", "restart"
        )


def start_postgres(*, durable: bool = False) -> PostgresServer:
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="appointments-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    root.chmod(0o700)
    server = PostgresServer(bindir=bindir, root=root, port=free_port(), durable=durable)
    server._run(
        str(bindir / "initdb"),
        "-D",
        str(server.datadir),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-sync",
    )
    server.start()
    return server


def remove(server: PostgresServer) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
