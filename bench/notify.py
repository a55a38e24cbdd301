"""Notifications under load: reserve throughput with delivery on against off, and the
lag from a change to its webhook's arrival at a local receiver.

    python -m bench.notify [--changes N] [--reserves N]

1. Delivery off (APPOINTMENTS_DELIVERY_INTERVAL_SECONDS=0): reserves at full speed.
2. For each placement of the delivery worker, with one webhook endpoint on a local
   receiver:
   - "in-process": every API worker delivers (interval 1 s, woken by its own commits);
   - "separate": the API does not deliver; one `appointments deliver` process does
     (polling every 0.2 s), as docs/deploy.md suggests for busy sites;
   a. reserves at full speed (goal: within 10 % of (1));
   b. N reservation changes offered on a schedule at 500 events per second: one
      provider's reserves (one event each) mixed with another provider's availability
      deletions that cancel 8 held bookings each (8 events per request), so the event
      rate is reached with the API far from saturated; then the time until the
      receiver has the last webhook and the p50/p99 lag from each event's
      `occurred_at` to its arrival (goal: p99 under 2 s).

The receiver is a small asyncio HTTP/1.1 server (keep-alive) answering 204 and
recording the arrival time of each `webhook-id`.
"""

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

from bench import loadgen, seed
from bench.harness import (
    LOGS,
    Service,
    admin_token,
    asyncpg_dsn,
    deliverer,
    postgres,
    service,
)
from bench.loadgen import Request
from tests.postgres_server import PostgresServer

RATE = 500
DRAIN_SECONDS = 120
CONNECTIONS = 32


def say(line: str) -> None:
    print(line, flush=True)


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, message_id = 0, ""
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value.strip())
                    elif name.lower() == "webhook-id":
                        message_id = value.strip()
                if length:
                    await reader.readexactly(length)
                self.arrivals.setdefault(message_id, time.time())
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Closing the server cancels its kept-alive connections; ending quietly here
            # keeps asyncio from logging each as an unretrieved exception.
            pass
        finally:
            writer.close()


async def _seed(pg: PostgresServer, count: int, prefix: str) -> tuple[list[str], list[str]]:
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        (provider,) = await seed.providers(db, 1, prefix)
        offset = int(await db.fetchval("SELECT count(*) FROM slots"))
        slots = await seed.slots(db, provider, count, offset=offset)
        people = await seed.clients(db, count, prefix)
        await db.execute("VACUUM ANALYZE")
        return slots, people
    finally:
        await db.close()


def _reserves(slots: list[str], people: list[str], token: str) -> list[Request]:
    auth = {"Authorization": f"Bearer {token}"}
    return [
        Request("POST", f"/clients/{people[i]}/reserve", {"slot_id": slots[i]}, auth)
        for i in range(len(slots))
    ]


async def throughput(
    pg: PostgresServer, svc: Service, count: int, label: str, receiver: Receiver | None = None
) -> float:
    slots, people = await _seed(pg, count, label)
    result = await loadgen.run(
        "127.0.0.1", svc.port, _reserves(slots, people, admin_token()), CONNECTIONS
    )
    assert result.status.count(201) == count, sorted(set(result.status))
    say(f"reserve, delivery {label}: {result.throughput:.0f} req/s over {count} reserves")
    if receiver is not None:
        # Drain this load's webhooks before anything else is measured.
        began = time.perf_counter()
        while len(receiver.arrivals) < count and time.perf_counter() - began < DRAIN_SECONDS:
            await asyncio.sleep(0.05)
        say(
            f"its {count} webhooks arrived within {time.perf_counter() - began:.1f} s after "
            f"the load ({len(receiver.arrivals)} arrived)"
        )
        if len(receiver.arrivals) < count:
            await _explain(pg)
    return result.throughput


async def _explain(pg: PostgresServer) -> None:
    """Where the deliveries are, when some did not arrive."""
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        rows = await db.fetch(
            "SELECT status, attempts, left(last_error, 120) AS error, count(*) FROM deliveries "
            "GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10"
        )
        undispatched = await db.fetchval("SELECT count(*) FROM events WHERE dispatched_at IS NULL")
    finally:
        await db.close()
    say(f"  undispatched events: {undispatched}")
    for row in rows:
        say(
            f"  deliveries {row['status']} after {row['attempts']}: {row['count']} ({row['error']})"
        )


# The mixed load of phase b: per cycle, RESERVES_PER_CYCLE reserves and one deletion
# of a window of HOLDS_PER_DELETION held slots.
RESERVES_PER_CYCLE = 2
HOLDS_PER_DELETION = 8


async def _mixed(pg: PostgresServer, count: int) -> tuple[list[Request], list[str]]:
    """Requests making `count` events, and the two providers whose events they are."""
    cycles = count // (RESERVES_PER_CYCLE + HOLDS_PER_DELETION)
    slots, people = await _seed(pg, cycles * RESERVES_PER_CYCLE, "mixed")
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        (cancelling,) = await seed.providers(db, 1, "cancelling")
        holders = await seed.clients(db, 100, "holder")
        await seed.holds(db, cancelling, holders, cycles * HOLDS_PER_DELETION, expired=False)
        base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
        reserving = await db.fetchval("SELECT provider_id::text FROM slots WHERE id = $1", slots[0])
        await db.execute("VACUUM ANALYZE")
    finally:
        await db.close()
    auth = {"Authorization": f"Bearer {admin_token()}"}
    reserves = _reserves(slots, people, admin_token())
    window = timedelta(minutes=15 * HOLDS_PER_DELETION)
    requests: list[Request] = []
    for cycle in range(cycles):
        requests += reserves[cycle * RESERVES_PER_CYCLE : (cycle + 1) * RESERVES_PER_CYCLE]
        begins, ends = base + cycle * window, base + (cycle + 1) * window
        query = urlencode(
            {"from": begins.isoformat(), "to": ends.isoformat(), "on_conflict": "cancel"}
        )
        requests.append(
            Request("DELETE", f"/providers/{cancelling}/availability?{query}", None, auth)
        )
    return requests, [reserving, cancelling]


async def lag(pg: PostgresServer, svc: Service, receiver: Receiver, count: int) -> dict[str, Any]:
    requests, providers = await _mixed(pg, count)
    events = len(requests) // (RESERVES_PER_CYCLE + 1) * (RESERVES_PER_CYCLE + HOLDS_PER_DELETION)
    request_rate = RATE * len(requests) / events
    began = time.time()
    result = await loadgen.run("127.0.0.1", svc.port, requests, CONNECTIONS, rate=request_rate)
    load_done = time.time()
    assert set(result.status) <= {200, 201}, sorted(set(result.status))
    achieved = events / (load_done - began)
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        rows = await db.fetch(
            "SELECT id::text, extract(epoch FROM occurred_at) AS at FROM events "
            "WHERE provider_id = ANY($1::uuid[])",
            providers,
        )
    finally:
        await db.close()
    assert len(rows) == events, (len(rows), events)
    deadline = time.time() + 120
    while any(row["id"] not in receiver.arrivals for row in rows) and time.time() < deadline:
        await asyncio.sleep(0.05)
    missing = [row["id"] for row in rows if row["id"] not in receiver.arrivals]
    lags = sorted(
        receiver.arrivals[row["id"]] - float(row["at"])
        for row in rows
        if row["id"] in receiver.arrivals
    )
    last = max(receiver.arrivals[row["id"]] for row in rows if row["id"] in receiver.arrivals)
    figures = {
        "changes": events,
        "offered_rate": RATE,
        "achieved_rate": round(achieved),
        "request_p99_ms": round(result.percentile(0.99) * 1000),
        "missing": len(missing),
        "last_delivered_after_load_s": round(last - load_done, 2),
        "lag_p50_ms": round(lags[len(lags) // 2] * 1000),
        "lag_p99_ms": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000),
        "lag_max_ms": round(lags[-1] * 1000),
    }
    say(
        f"{events} changes at {achieved:.0f}/s (request p99 {figures['request_p99_ms']} ms): "
        f"last webhook {figures['last_delivered_after_load_s']} s after the load; lag p50 "
        f"{figures['lag_p50_ms']} ms, p99 {figures['lag_p99_ms']} ms, max "
        f"{figures['lag_max_ms']} ms; {len(missing)} missing"
    )
    return figures


async def _forget_earlier_events(pg: PostgresServer) -> None:
    """The delivery-off phase's events, never dispatched, must not load the next phases."""
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        await db.execute("UPDATE events SET dispatched_at = now() WHERE dispatched_at IS NULL")
        # An earlier phase's endpoint points at a receiver that is gone.
        await db.execute("DELETE FROM webhook_endpoints")
    finally:
        await db.close()


async def _with_endpoint(svc: Service, receiver: Receiver) -> None:
    async with httpx.AsyncClient(
        base_url=svc.base, headers={"Authorization": f"Bearer {admin_token()}"}
    ) as http:
        answer = await http.post(
            "/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hooks"}
        )
        answer.raise_for_status()


async def _placement_run(
    pg: PostgresServer, svc: Service, changes: int, reserves: int, label: str
) -> dict[str, Any]:
    await _forget_earlier_events(pg)
    receiver = Receiver()
    await receiver.start()
    await _with_endpoint(svc, receiver)
    figures: dict[str, Any] = {
        "reserve_rps": round(await throughput(pg, svc, reserves, label, receiver))
    }
    figures["lag"] = await lag(pg, svc, receiver, changes)
    return figures


def main(changes: int, reserves: int) -> dict[str, Any]:
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat()}
    with postgres() as pg:
        with service(pg.url, workers=4, delivery_interval_seconds="0") as svc:
            off = round(asyncio.run(throughput(pg, svc, reserves, "off")))
            results["reserve_rps_delivery_off"] = off
        with service(pg.url, workers=4, delivery_interval_seconds="1") as svc:
            results["in-process"] = asyncio.run(
                _placement_run(pg, svc, changes, reserves, "in-process")
            )
        with (
            service(pg.url, workers=4, delivery_interval_seconds="0") as svc,
            deliverer(pg.url, delivery_interval_seconds="0.2"),
        ):
            results["separate"] = asyncio.run(
                _placement_run(pg, svc, changes, reserves, "separate")
            )
    for placement in ("in-process", "separate"):
        ratio = results[placement]["reserve_rps"] / off
        results[placement]["on_over_off"] = round(ratio, 3)
        say(f"{placement}: throughput with delivery on / off: {ratio:.3f} (goal >= 0.90)")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--reserves", type=int, default=5_000)
    args = parser.parse_args()
    figures = main(args.changes, args.reserves)
    LOGS.mkdir(exist_ok=True)
    (LOGS / "notify.json").write_text(json.dumps(figures, indent=2))
    sys.exit(0)
