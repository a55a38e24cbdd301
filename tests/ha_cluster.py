"""A Patroni cluster (deploy/ha/cluster) for the failover test: three PostgreSQL
nodes and one etcd member on loopback, in a temporary folder."""

import json
import os
import random
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "ha" / "cluster"


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    """A base port with the 22 ports the cluster uses free."""
    for _ in range(50):
        base = random.randrange(30_000, 60_000, 100)
        if all(_free(base + offset) for offset in (0, 1, 2, 10, 11, 12, 20, 21, 40, 41)):
            return base
    raise RuntimeError("no free ports for the cluster")


@dataclass(frozen=True)
class Cluster:
    url: str
    folder: Path
    base: int

    def members(self) -> list[dict[str, object]]:
        for rest in (self.base + 10, self.base + 11, self.base + 12):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest}/cluster", timeout=2) as r:
                    members: list[dict[str, object]] = json.load(r)["members"]
                    return members
            except OSError:
                continue
        return []

    def haproxy(self) -> tuple[str, str]:
        """HAProxy's URLs on Patroni's health checks: (the primary, the replicas)."""
        primary, replicas = (self.folder / "haproxy-urls").read_text().split()
        return primary, replicas

    def leader(self) -> str | None:
        for member in self.members():
            if member["role"] == "leader" and member["state"] == "running":
                return str(member["name"])
        return None

    def pids(self, node: str) -> tuple[int, int]:
        """(Patroni, postmaster) of a node."""
        patroni = int((self.folder / node / "pid").read_text())
        postmaster = (self.folder / node / "data" / "postmaster.pid").read_text().split()[0]
        return patroni, int(postmaster)


@contextmanager
def ha_cluster(folder: Path) -> Iterator[Cluster]:
    base = _free_base()
    env = dict(os.environ, APPOINTMENTS_HA_PORT=str(base))
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o777)  # Patroni runs as `postgres` when the tests run as root
    try:
        started = subprocess.run(
            [str(SCRIPT), "start", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if started.returncode:
            raise RuntimeError(f"cluster did not start: {started.stderr[-3000:]}")
        yield Cluster(started.stdout.strip().splitlines()[-1], folder, base)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], env=env, timeout=120)
