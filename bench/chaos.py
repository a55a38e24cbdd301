"""Fault injection: reserve / confirm / cancel under worker kills and a database crash.

    python -m bench.chaos [--operations N] [--kills K] [--seed S]

Four worker processes serve a small set of slots to many clients while the
harness kill -9s workers at random moments and restarts PostgreSQL once with
`pg_ctl restart -m immediate`. The client keeps a ledger of every acknowledged
(2xx) confirmation and cancellation. At the end an invariant checker proves:
no slot with more than one live reservation, every acknowledged confirmation
is in the database, no reservation without its slot, slot statuses agree with
their reservations, and no answer was a 500 or hung past its timeout.
"""

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench import seed
from bench.harness import Service, admin_token, asyncpg_dsn, postgres, service
from tests.postgres_server import PostgresServer

REQUEST_TIMEOUT = 15.0


@dataclass
class Ledger:
    confirmed: set[str] = field(default_factory=set)  # acknowledged, not since cancelled
    cancelled: set[str] = field(default_factory=set)  # acknowledged cancellations
    uncertain: set[str] = field(default_factory=set)  # sent, answer lost (timeout, reset)
    outcomes: Counter[str] = field(default_factory=Counter)
    hung: int = 0
    server_errors: list[str] = field(default_factory=list)
    readyz_failed_during_outage: bool = False
    workers_seen: set[int] = field(default_factory=set)
    unavailable_seen: int = 0
    # Proof that the faults met traffic: requests in flight at each worker kill, and
    # requests sent while the database was down.
    in_flight: int = 0
    in_flight_at_kills: list[int] = field(default_factory=list)
    database_down: bool = False
    sent_while_database_down: int = 0
    # Traffic goes on past its budget until every fault has happened, so no fault
    # falls on an idle service.
    faults_done: bool = False


async def _send(
    http: httpx.AsyncClient, ledger: Ledger, method: str, path: str, body: Any = None
) -> httpx.Response | None:
    if ledger.database_down:
        ledger.sent_while_database_down += 1
    ledger.in_flight += 1
    try:
        response = await http.request(method, path, json=body)
    except httpx.TimeoutException:
        ledger.hung += 1
        return None
    except httpx.TransportError:  # the worker died mid-request: no answer
        ledger.outcomes["no answer"] += 1
        return None
    finally:
        ledger.in_flight -= 1
    ledger.outcomes[f"{method} {path.rsplit('/', 1)[-1]} {response.status_code}"] += 1
    if response.status_code == 503:
        ledger.unavailable_seen += 1
    elif response.status_code >= 500:
        ledger.server_errors.append(
            f"{method} {path}: {response.status_code} {response.text[:200]}"
        )
    return response


async def client_session(
    base: str,
    token: str,
    clients: list[str],
    slots: list[str],
    ledger: Ledger,
    budget: list[int],
    rng: random.Random,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT) as http:
        while budget[0] > 0 or not ledger.faults_done:
            budget[0] -= 1
            client, slot = rng.choice(clients), rng.choice(slots)
            reserved = await _send(
                http, ledger, "POST", f"/clients/{client}/reserve", {"slot_id": slot}
            )
            if reserved is None or reserved.status_code != 201:
                continue
            reservation = reserved.json()["id"]
            roll = rng.random()
            if roll < 0.6:
                confirmed = await _send(
                    http,
                    ledger,
                    "POST",
                    f"/clients/{client}/confirm",
                    {"reservation_id": reservation},
                )
                if confirmed is None:
                    ledger.uncertain.add(reservation)
                elif confirmed.status_code == 200:
                    ledger.confirmed.add(reservation)
                    if rng.random() < 0.5:
                        cancel_path = f"/clients/{client}/reservations/{reservation}/cancel"
                        cancelled = await _send(http, ledger, "POST", cancel_path)
                        if cancelled is None:
                            ledger.uncertain.add(reservation)
                        elif cancelled.status_code == 200:
                            ledger.confirmed.discard(reservation)
                            ledger.cancelled.add(reservation)
            elif roll < 0.8:
                cancel_path = f"/clients/{client}/reservations/{reservation}/cancel"
                cancelled = await _send(http, ledger, "POST", cancel_path)
                if cancelled is not None and cancelled.status_code == 200:
                    ledger.cancelled.add(reservation)
            # else: let the hold run out


async def _faults(
    pg: PostgresServer,
    svc: Service,
    ledger: Ledger,
    kills: int,
    duration: float,
    rng: random.Random,
) -> None:
    """Kill `kills` workers at random moments and crash-restart PostgreSQL once, mid-run."""
    restart_at = duration * rng.uniform(0.3, 0.6)
    moments = sorted(rng.uniform(0.1, 0.9) * duration for _ in range(kills))
    began = time.monotonic()
    restarted = False
    for moment in [*moments, None]:
        while True:
            elapsed = time.monotonic() - began
            if not restarted and elapsed >= restart_at:
                await _crash_database(pg, svc, ledger)
                restarted = True
                continue
            if moment is None or elapsed >= moment:
                break
            ledger.workers_seen.update(svc.worker_pids())
            await asyncio.sleep(0.05)
        if moment is None:
            break
        # Kill while requests are in flight: the point is to cut some of them.
        deadline = time.monotonic() + 5
        while ledger.in_flight == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        workers = svc.worker_pids()
        if workers:
            victim = rng.choice(workers)
            ledger.in_flight_at_kills.append(ledger.in_flight)
            os.kill(victim, signal.SIGKILL)
            ledger.outcomes["worker killed"] += 1
    if not restarted:
        await _crash_database(pg, svc, ledger)


async def _crash_database(pg: PostgresServer, svc: Service, ledger: Ledger) -> None:
    ledger.outcomes["database crash-restart"] += 1
    ledger.database_down = True
    restart = asyncio.create_task(asyncio.to_thread(pg.crash_restart))
    async with httpx.AsyncClient(base_url=svc.base, timeout=REQUEST_TIMEOUT) as http:
        while not restart.done():
            try:
                ready = await http.get("/readyz")
                if ready.status_code == 503:
                    ledger.readyz_failed_during_outage = True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    await restart
    ledger.database_down = False


async def _wait_ready(base: str, timeout: float = 60) -> float:
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while time.monotonic() - began < timeout:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("service did not recover")


async def check_invariants(dsn: str, ledger: Ledger) -> list[str]:
    """Every broken invariant, described; an empty list means all hold."""
    db = await asyncpg.connect(dsn)
    problems: list[str] = []
    doubled = await db.fetch(
        "SELECT slot_id, count(*) FROM reservations WHERE status IN ('held', 'confirmed') "
        "GROUP BY slot_id HAVING count(*) > 1"
    )
    problems += [f"slot {r['slot_id']} has {r['count']} live reservations" for r in doubled]
    statuses = {
        str(r["id"]): r["status"] for r in await db.fetch("SELECT id, status FROM reservations")
    }
    for reservation in ledger.confirmed - ledger.uncertain:
        if statuses.get(reservation) != "confirmed":
            problems.append(
                f"acknowledged confirmation {reservation} is {statuses.get(reservation)}"
            )
    for reservation in ledger.cancelled - ledger.uncertain:
        if statuses.get(reservation) != "cancelled":
            problems.append(
                f"acknowledged cancellation {reservation} is {statuses.get(reservation)}"
            )
    orphans = await db.fetchval(
        "SELECT count(*) FROM reservations r "
        "LEFT JOIN slots s ON s.id = r.slot_id WHERE s.id IS NULL"
    )
    if orphans:
        problems.append(f"{orphans} reservation(s) without their slot")
    disagreements = await db.fetch(
        """
        WITH per_slot AS (
            SELECT s.id, s.status,
                   count(*) FILTER (WHERE r.status = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE r.status = 'held') AS held,
                   count(*) FILTER (WHERE r.status = 'held' AND r.expires_at > now()) AS live,
                   count(*) FILTER (WHERE r.status = 'held'
                                    AND r.expires_at = s.hold_expires_at) AS matching
            FROM slots s LEFT JOIN reservations r ON r.slot_id = s.id
            GROUP BY s.id, s.status, s.hold_expires_at
        )
        SELECT * FROM per_slot
        WHERE NOT (
               (status = 'confirmed' AND confirmed = 1 AND held = 0)
            OR (status = 'reserved' AND confirmed = 0 AND matching = 1)
            OR (status = 'available' AND confirmed = 0 AND live = 0)
        )
        """
    )
    problems += [
        f"slot {r['id']} is {r['status']} but its reservations disagree: {dict(r)}"
        for r in disagreements
    ]
    await db.close()
    if ledger.server_errors:
        problems += [f"server error: {e}" for e in ledger.server_errors[:10]]
    if ledger.hung:
        problems.append(f"{ledger.hung} request(s) hung past {REQUEST_TIMEOUT}s")
    if not ledger.readyz_failed_during_outage:
        problems.append("/readyz never reported the database outage")
    return problems


async def _run(
    pg: PostgresServer, svc: Service, operations: int, kills: int, sessions: int, rng: random.Random
) -> tuple[Ledger, list[str], float]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "chaos")
    slots = await seed.slots(db, provider, 30)
    clients = await seed.clients(db, 40, "chaos")
    await db.close()
    ledger = Ledger()
    budget = [operations]
    token = admin_token()
    expected_duration = max(5.0, operations / 150)
    began = time.monotonic()

    async def faults() -> None:
        try:
            await _faults(pg, svc, ledger, kills, expected_duration, rng)
        finally:
            ledger.faults_done = True  # the sessions stop once their budget is spent

    await asyncio.gather(
        faults(),
        *(
            client_session(
                svc.base, token, clients, slots, ledger, budget, random.Random(rng.random())
            )
            for _ in range(sessions)
        ),
    )
    recovery = await _wait_ready(svc.base)
    problems = await check_invariants(asyncpg_dsn(pg.url), ledger)
    ledger.outcomes["seconds"] = int(time.monotonic() - began)
    return ledger, problems, recovery


def run(
    operations: int = 3000, kills: int = 3, sessions: int = 16, seed_value: int | None = None
) -> tuple[Ledger, list[str]]:
    """The whole fault run; returns the ledger and the broken invariants (empty = pass)."""
    rng = random.Random(seed_value)
    with (
        postgres(durable=True) as pg,
        service(
            pg.url, workers=4, hold_seconds="3", sweep_interval_seconds="1", db_pool_size="5"
        ) as svc,
    ):
        ledger, problems, recovery = asyncio.run(_run(pg, svc, operations, kills, sessions, rng))
    ledger.outcomes["recovery seconds after run"] = round(recovery, 1)  # type: ignore[assignment]
    ledger.outcomes["workers restarted by uvicorn"] = len(ledger.workers_seen) - 4
    return ledger, problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--operations", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    ledger, problems = run(args.operations, args.kills, seed_value=args.seed)
    for outcome, count in sorted(ledger.outcomes.items()):
        print(f"{outcome:45} {count}")
    print(
        f"acknowledged confirmations kept: {len(ledger.confirmed)}, "
        f"cancellations: {len(ledger.cancelled)}, uncertain: {len(ledger.uncertain)}"
    )
    print(
        f"503 answers during faults: {ledger.unavailable_seen}; "
        f"readyz reported outage: {ledger.readyz_failed_during_outage}"
    )
    if problems:
        print("INVARIANTS BROKEN:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("all invariants hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
