"""Losing the PostgreSQL primary under load (issue 14).

    python -m bench.failover [--runs 3] [--kill postmaster|node] [--seconds 20]

A Patroni cluster of three nodes with synchronous replication (deploy/ha/cluster),
the service with 4 workers on its multi-host URL, 16 client sessions doing reserves,
confirms and cancels (bench.chaos's mix, with a ledger of every acknowledged
confirmation and cancellation). A third of the way in, the primary is hit:
`postmaster` (the issue's case: kill -9 of the primary's postmaster; Patroni
restarts it or fails over) or `node` (Patroni and the postmaster together, as when
the machine dies: a standby is promoted). Reported per run: seconds from the kill to
the first successful write (a provider created, polled every 50 ms), the answers by
status (503s during the gap; a 500 is a failure), and chaos's invariant checker on
the primary afterwards: every acknowledged confirmation is there, no slot has two
live reservations, slots and reservations agree.
"""

import argparse
import asyncio
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from appointments import migrate
from bench import seed
from bench.chaos import REQUEST_TIMEOUT, Ledger, check_invariants, client_session
from bench.harness import Service, admin_token, service
from tests.ha_cluster import Cluster, ha_cluster

SESSIONS = 16


def say(line: str) -> None:
    print(line, flush=True)


async def _first_write(svc: Service, token: str, ledger: Ledger, since: float) -> float:
    """Seconds from `since` to the first write that succeeds; watches /readyz too."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=svc.base, headers=headers, timeout=5) as http:
        while True:
            try:
                if (await http.get("/readyz")).status_code == 503:
                    ledger.readyz_failed_during_outage = True
                created = await http.post("/providers", json={"name": "after the loss"})
                if created.status_code == 201:
                    return time.monotonic() - since
            except httpx.TransportError:
                pass
            if time.monotonic() - since > 120:
                raise RuntimeError("writes did not come back within 120 s")
            await asyncio.sleep(0.05)


async def _lose_primary(
    cluster: Cluster, svc: Service, token: str, ledger: Ledger, kill: str, at: float
) -> dict[str, Any]:
    await asyncio.sleep(at)
    leader = cluster.leader()
    assert leader is not None
    patroni, postmaster = cluster.pids(leader)
    for pid in (patroni, postmaster) if kill == "node" else (postmaster,):
        os.kill(pid, signal.SIGKILL)
    back = await _first_write(svc, token, ledger, time.monotonic())
    return {"old_primary": leader, "first_write_seconds": round(back, 2)}


async def _run(cluster: Cluster, svc: Service, kill: str, seconds: float) -> dict[str, Any]:
    db = await asyncpg.connect(cluster.url)
    (provider,) = await seed.providers(db, 1, "ha")
    slots = await seed.slots(db, provider, 200)
    clients = await seed.clients(db, 60, "ha")
    await db.close()
    token = admin_token()
    ledger = Ledger()
    budget = [10**9]
    rng = random.Random()

    async def stop_after() -> None:
        await asyncio.sleep(seconds)
        budget[0] = 0

    fault, *_ = await asyncio.gather(
        _lose_primary(cluster, svc, token, ledger, kill, seconds / 3),
        stop_after(),
        *(
            client_session(
                svc.base, token, clients, slots, ledger, budget, random.Random(rng.random())
            )
            for _ in range(SESSIONS)
        ),
    )
    problems = await check_invariants(cluster.url, ledger)
    unavailable = sum(n for outcome, n in ledger.outcomes.items() if outcome.endswith(" 503"))
    return {
        **fault,
        "new_primary": cluster.leader(),
        "answers": dict(sorted(ledger.outcomes.items())),
        "answers_503": unavailable,
        "server_errors": len(ledger.server_errors),
        "acknowledged_confirmations": len(ledger.confirmed),
        "acknowledged_cancellations": len(ledger.cancelled),
        "uncertain": len(ledger.uncertain),
        "problems": problems,
    }


def run_once(kill: str, seconds: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="appointments-ha-bench-"))
    try:
        with ha_cluster(folder) as cluster:
            migrate.upgrade(cluster.url)
            with service(
                cluster.url,
                workers=4,
                hold_seconds="3",
                sweep_interval_seconds="1",
                db_pool_size="5",
                db_connect_timeout_seconds="2",
            ) as svc:
                return asyncio.run(_run(cluster, svc, kill, seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kill", choices=("postmaster", "node"), default="postmaster")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    failed = False
    for number in range(1, args.runs + 1):
        result = run_once(args.kill, args.seconds)
        say(
            f"run {number} ({args.kill} killed): {result['old_primary']} -> "
            f"{result['new_primary']}, first write after {result['first_write_seconds']} s, "
            f"{result['answers_503']} x 503, {result['server_errors']} x 5xx other than 503, "
            f"{result['acknowledged_confirmations']} acknowledged confirmations and "
            f"{result['acknowledged_cancellations']} cancellations checked on the primary "
            f"(uncertain {result['uncertain']}), request timeout {REQUEST_TIMEOUT:g} s"
        )
        for outcome, count in result["answers"].items():
            say(f"    {outcome:40} {count}")
        if result["problems"]:
            failed = True
            say("    BROKEN: " + "; ".join(result["problems"][:10]))
        else:
            say("    all invariants hold")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
