"""The service's own SQL run by pgbench: what PostgreSQL alone does per second, and
its CPU per transaction, to set beside the service's figures for the same work.

`script` turns a statement with named parameters (`:name`, as the service writes
them) into a pgbench script: each parameter becomes an SQL literal of the value
the service would send, or an expression given in `overrides` (pgbench variables,
`now()`, a random offset).
"""

import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.postgres_server import PostgresServer

_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, timedelta):
        return f"'{value.total_seconds()} seconds'::interval"
    text = str(value).replace("'", "''")
    return f"'{text}'"


def script(sql: str, values: Mapping[str, object], overrides: Mapping[str, str]) -> str:
    """One statement of a pgbench script (without its setup lines)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return overrides[name] if name in overrides else literal(values[name])

    return " ".join(_NAME.sub(replace, sql).split()) + ";\n"


@dataclass(frozen=True)
class Result:
    tps: float
    postgres_cpu_ms: float


def run(
    pg: PostgresServer,
    text: str,
    transactions: int,
    cpu_ms: Callable[[], float],
    clients: int = 16,
) -> Result:
    """`transactions` runs of the script over `clients` connections (prepared
    statements, as asyncpg uses); PostgreSQL's CPU read by `cpu_ms` around it."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(text)
    per_client = max(1, transactions // clients)
    before = cpu_ms()
    done = subprocess.run(
        [
            str(pg.bindir / "pgbench"),
            *("-n", "-M", "prepared", "-f", file.name),
            *("-c", str(clients), "-j", "2", "-t", str(per_client)),
            *("-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"),
        ],
        capture_output=True,
        text=True,
    )
    spent = cpu_ms() - before
    if done.returncode:
        raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    found = re.search(r"tps = ([\d.]+)", done.stdout)
    assert found, done.stdout
    return Result(float(found.group(1)), spent / (per_client * clients))
