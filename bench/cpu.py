"""CPU per request: the service's processes against PostgreSQL's, read from /proc.

    python -m bench.cpu [--requests N] [--rounds R] [--profile DIR] [--no-fast-paths]
                        [--workers W] [--client-preempts] [--busy]

For each path (a 100-slot listing page, a 100-start page of an appointment type's
start times where the service has them, a reserve, a confirm, and where the service
has group sessions a seat reserve: 100 clients joining each session of a 500-seat
type, opened before by one request each, measured apart), R rounds of N
requests over 16 connections against W workers (4 by default, as issue 13
measured); the CPU time (user + system) of the service's process tree and of
PostgreSQL's (postmaster, backends, and children that exited) is read from /proc
before and after each round. Prints milliseconds of CPU per request for each side
and their ratio, per round and for the median round (by ratio): the goal of issue
13 is a ratio <= 1.0. One round on a small shared box moves by 10-25 % from the
next (how the 16 connections fall on the workers, how often a worker is preempted),
so one round alone decides nothing. The load generator (this process) runs as
SCHED_BATCH while measuring, so that it does not preempt the service's workers as no
remote client could (`yielding_client`); each round reports how often the workers
were preempted per request. The delivery worker is off (its cost per event is
bench.notify's subject). With --busy, another calendar's busy time covers one hour in
five of the listed slots (issue 25: the hot paths with busy time on the provider).
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from appointments.appointment_types import start_page, start_times
from appointments.appointment_types.rules import BookingRules
from appointments.availability import listing as slot_listing
from appointments.availability.schemas import SlotFilter
from appointments.booking import one_statement
from appointments.pagination import PageRequest
from appointments.settings import Settings
from bench import loadgen, pgbench, profile, seed
from bench.harness import Service, admin_token, asyncpg_dsn, postgres, service, status_value
from bench.loadgen import Request
from tests.postgres_server import PostgresServer

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
CONNECTIONS = 16


def _ticks(pid: int, *, with_exited_children: bool) -> int:
    """utime + stime of a process (and of its waited-for children), in clock ticks."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        # Gone between listing the children and reading: its time is in the parent's
        # "exited children" once waited for.
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces; fields start at 3
    own = int(fields[11]) + int(fields[12])
    return own + (int(fields[13]) + int(fields[14]) if with_exited_children else 0)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def tree_cpu_ms(root: int) -> float:
    """CPU of a process, its live children, and its children that have exited."""
    ticks = _ticks(root, with_exited_children=True)
    ticks += sum(_ticks(child, with_exited_children=False) for child in _children(root))
    return ticks * TICK_MS


def postmaster_pid(pg: PostgresServer) -> int:
    return int((pg.datadir / "postmaster.pid").read_text().splitlines()[0])


PROFILE_DIR: Path | None = None
# Whether the load generator may preempt the service (the default before session 8).
CLIENT_PREEMPTS = False


def preempted(pids: list[int]) -> int:
    """Times these processes were taken off the CPU while they could still run."""
    return sum(status_value(pid, "nonvoluntary_ctxt_switches") for pid in pids)


@contextlib.contextmanager
def yielding_client() -> Iterator[None]:
    """This process (the load generator) as SCHED_BATCH while a round runs.

    The clients a service answers are on other machines; here they share its two
    cores. A normal task woken by a response preempts the task that woke it, so
    without this the service's worker was taken off the CPU about once per request by
    the load generator itself (`perf record -e sched:sched_switch`, 2 s of start-time
    listings: workers preempted 6,228 times, 4,014 of them by the load generator,
    1,998 by PostgreSQL's backends), paying for it in CPU (a worker's next turn starts
    with cold caches) that no remote client makes it pay. A SCHED_BATCH task does not
    preempt when woken; it still gets its fair share of the CPU. PostgreSQL's backends
    are left as they are.
    """
    if CLIENT_PREEMPTS:
        yield
        return
    policy, priority = os.sched_getscheduler(0), os.sched_getparam(0)
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, priority)


async def _sessions(db: asyncpg.Connection) -> int:
    """Connections PostgreSQL has accepted so far."""
    count: int = await db.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def measure(
    name: str,
    pg: PostgresServer,
    svc: Service,
    rounds: list[list[Request]],
    expect: int,
    check: Callable[[loadgen.Result], None] | None = None,
    *,
    database: bool = True,
) -> dict[str, Any]:
    """Each round measured on its own; the figures of the median round (by ratio, or by
    the service's CPU for a path that does not use the database), with every round's
    ratio beside."""
    rows = [
        await _round(
            f"{name} {n + 1}/{len(rounds)}", pg, svc, requests, expect, check, n == 0, database
        )
        for n, requests in enumerate(rounds)
    ]
    ordered = sorted(rows, key=lambda r: r["ratio"] if database else r["service_cpu_ms"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["round_ratios"] = [row["ratio"] for row in rows]
    median["round_service_cpu_ms"] = [row["service_cpu_ms"] for row in rows]
    if len(rows) > 1:
        print(
            f"{name:<12} median round: service {median['service_cpu_ms']:.2f} ms   PostgreSQL "
            f"{median['postgres_cpu_ms']:.2f} ms   ratio {median['ratio']}",
            flush=True,
        )
    return median


async def _round(
    name: str,
    pg: PostgresServer,
    svc: Service,
    requests: list[Request],
    expect: int,
    check: Callable[[loadgen.Result], None] | None,
    profiled: bool,
    database: bool,
) -> dict[str, Any]:
    postmaster = postmaster_pid(pg)
    # Open across the measured window: a backend that exits inside it would count.
    counter = await asyncpg.connect(asyncpg_dsn(pg.url))
    sessions_before = await _sessions(counter)
    service_before, pg_before = tree_cpu_ms(svc.process.pid), tree_cpu_ms(postmaster)
    preempted_before = preempted(svc.worker_pids())
    profiled = profiled and PROFILE_DIR is not None
    with contextlib.ExitStack() as stack:
        stack.enter_context(yielding_client())
        if profiled:
            assert PROFILE_DIR is not None
            samples = PROFILE_DIR / f"{name.rsplit(' ', 1)[0].replace(' ', '_')}.txt"
            stack.enter_context(profile.sampled(svc.process.pid, samples))
        result = await loadgen.run(
            "127.0.0.1", svc.port, requests, concurrency=CONNECTIONS, keep_bodies=check is not None
        )
    if profiled:
        print(
            "\n".join(
                [
                    f"{name}, profiled (CPU figures include py-spy's cost):",
                    *profile.summary(samples),
                ]
            )
        )
    service_ms = (tree_cpu_ms(svc.process.pid) - service_before) / len(requests)
    preemptions = (preempted(svc.worker_pids()) - preempted_before) / len(requests)
    pg_ms = (tree_cpu_ms(postmaster) - pg_before) / len(requests)
    # The service's new connections while measured: a pool that closes and reopens
    # connections under load pays for it on both sides.
    opened = await _sessions(counter) - sessions_before
    await counter.close()
    assert set(result.status) == {expect}, (name, sorted(set(result.status)))
    if check is not None:
        check(result)
    row = {
        "requests": len(requests),
        "req_per_s": round(result.throughput),
        "service_cpu_ms": round(service_ms, 3),
        "postgres_cpu_ms": round(pg_ms, 3),
        # Without the database, PostgreSQL's background work is not this path's.
        "ratio": round(service_ms / pg_ms, 2) if pg_ms and database else None,
        "connections_opened": opened,
        "worker_preemptions_per_request": round(preemptions, 2),
    }
    print(
        f"{name:<16} {row['req_per_s']:>6} req/s   service {row['service_cpu_ms']:.2f} ms   "
        f"PostgreSQL {row['postgres_cpu_ms']:.2f} ms   ratio {row['ratio']}   "
        f"connections opened {opened}   workers preempted {preemptions:.2f} per request",
        flush=True,
    )
    return row


def beside(pg: PostgresServer, name: str, text: str, count: int, row: dict[str, Any]) -> None:
    """The same SQL through pgbench: PostgreSQL's own rate and CPU for this work."""
    alone = pgbench.run(pg, text, count, lambda: tree_cpu_ms(postmaster_pid(pg)))
    row["pgbench_tps"] = round(alone.tps)
    row["pgbench_postgres_cpu_ms"] = round(alone.postgres_cpu_ms, 3)
    row["service_share_of_pgbench"] = round(row["req_per_s"] / alone.tps, 2)
    print(
        f"{'':<12} pgbench, same SQL: {alone.tps:.0f} tps, PostgreSQL "
        f"{alone.postgres_cpu_ms:.2f} ms per transaction; the service reaches "
        f"{row['service_share_of_pgbench']:.2f} of it",
        flush=True,
    )


def _from_offset(base: datetime) -> str:
    """pgbench: a random page start among the first 10,000 slots, as the HTTP load."""
    return f"({pgbench.literal(base)} + CAST(:k AS float8) * interval '15 minutes')"


async def _pairs(pg: PostgresServer, table: str, rows: list[tuple[str, str]]) -> None:
    """A numbered table of (client, other id) for pgbench to walk with a sequence."""
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    await db.execute(f"CREATE TABLE {table} (n bigint PRIMARY KEY, client_id uuid, other uuid)")
    await db.executemany(
        f"INSERT INTO {table} VALUES ($1, $2, $3)",
        [(i + 1, client, other) for i, (client, other) in enumerate(rows)],
    )
    await db.execute(f"CREATE SEQUENCE {table}_seq")
    await db.execute(f"VACUUM ANALYZE {table}")
    await db.close()


def _walk(table: str) -> str:
    return (
        f"SELECT nextval('{table}_seq') AS n \\gset\n"
        f"SELECT client_id, other FROM {table} WHERE n = :n \\gset\n"
    )


def _in_rounds(requests: list[Request], count: int) -> list[list[Request]]:
    """One-shot requests (each reserve or confirm once) cut into rounds of `count`."""
    return [requests[start : start + count] for start in range(0, len(requests), count)]


async def run(
    pg: PostgresServer, svc: Service, count: int, rounds: int, busy: bool = False
) -> dict[str, Any]:
    token = admin_token()
    headers = {"Authorization": f"Bearer {token}"}
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    (provider,) = await seed.providers(db, 1, "cpu")
    # Listings read the first 10,000; each round of reserves takes `count` from the end.
    total = max(20_000, 10_000 + rounds * count)
    slots = await seed.slots(db, provider, total)
    # pgbench's own reserves take these, its confirms confirm them.
    pg_slots = await seed.slots(db, provider, count, offset=total)
    # A client per reserve (rounds of them, then pgbench's), so no one reaches the cap.
    people = await seed.clients(db, (rounds + 1) * count, "cpu")
    # Seat reserves: a client per seat, SEATS_PER_SESSION seats of each session, and a
    # client per session to open it.
    seat_people = await seed.clients(db, rounds * count, "seat")
    seat_starts = await seed.slots(
        db, provider, -(-rounds * count // SEATS_PER_SESSION), offset=total + count
    )
    openers = await seed.clients(db, len(seat_starts), "opener")
    # Series: 12 weekly occurrences each, in blocks of WEEK slots x 12 after the seats'
    # slots; series j of a block starts at its slot j, so none overlaps another.
    series_count = min(count, SERIES_PER_ROUND) * rounds
    blocks = -(-series_count // WEEK)
    series_slots = await seed.slots(
        db, provider, blocks * WEEK * SERIES_WEEKS, offset=total + count + len(seat_starts)
    )
    series_people = await seed.clients(db, series_count, "series")
    # Sessions opened before the measured opens, on slots after the series' ones: every
    # worker learns the type is a group type and every connection has the opening's
    # statements prepared, as in steady use (otherwise a round of 150-300 opens over 40
    # connections measured mostly first executions and their planning).
    warm_starts = await seed.slots(
        db, provider, WARM_OPENS, offset=total + count + len(seat_starts) + len(series_slots)
    )
    warm_openers = await seed.clients(db, WARM_OPENS, "warm-opener")
    base: datetime = await db.fetchval(f"SELECT {seed.BASE}")
    # Another calendar's busy time over the listed slots, one hour in five (as
    # bench.busy); the reserves' slots after them stay free.
    busy_slots = await seed.busy_hours(db, provider, base, 10_000 // 4 // 5) if busy else 0
    await db.execute("VACUUM ANALYZE")
    await db.close()
    now = datetime.now(UTC)
    provider_id = uuid.UUID(provider)

    def page_paths(prefix: str, n: int = count, query: str = "") -> list[Request]:
        paths = []
        for _ in range(n):
            start = base.timestamp() + random.randrange(10_000) * 900
            iso = datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")
            paths.append(Request("GET", f"{prefix}?limit=100&from={iso}{query}", None, headers))
        return paths

    figures: dict[str, Any] = {"busy_slots": busy_slots}
    # The floor: what a request costs that touches neither the database nor a token
    # (uvicorn, FastAPI's routing and our middleware).
    health = [Request("GET", "/healthz", None, {}) for _ in range(count)]
    await loadgen.run("127.0.0.1", svc.port, health[:200], concurrency=CONNECTIONS)
    figures["floor"] = await measure("floor", pg, svc, [health] * rounds, 200, database=False)
    listing = f"/providers/{provider}/availability"
    await loadgen.run("127.0.0.1", svc.port, page_paths(listing, 200), concurrency=CONNECTIONS)
    figures["listing"] = await measure(
        "listing", pg, svc, [page_paths(listing) for _ in range(rounds)], 200
    )
    query = slot_listing.Query(
        status=SlotFilter.AVAILABLE,
        start_from=base,
        start_before=None,
        bookable_after=now + timedelta(days=1),
        now=now,
        request=PageRequest(limit=100, after=None),
    )
    sql, values = slot_listing.statement("postgresql", provider_id, query)
    text = "\\set k random(0, 9999)\n" + pgbench.script(
        sql, values, {"start_from": _from_offset(base)}
    )
    beside(pg, "listing", text, count, figures["listing"])

    document = httpx.get(f"{svc.base}/openapi.json").json()
    if "/providers/{provider_id}/appointment-types" in document["paths"]:
        kind = httpx.post(
            f"{svc.base}/providers/{provider}/appointment-types",
            json={"name": "Consultation", "duration_minutes": 45, "buffer_after_minutes": 15},
            headers=headers,
        ).json()
        starts = f"/providers/{provider}/appointment-types/{kind['id']}/availability"
        await loadgen.run("127.0.0.1", svc.port, page_paths(starts, 200), concurrency=CONNECTIONS)
        figures["start_times"] = await measure(
            "start times", pg, svc, [page_paths(starts) for _ in range(rounds)], 200
        )
        rules = BookingRules.of(
            start_page.Terms(uuid.UUID(kind["id"]), 45, 0, 15, None, None, None, 0, 1),
            Settings(),
        )
        search = start_times.Search(
            start_from=base, after=rules.bookable_after(now), latest=None, zone="UTC"
        )
        request = PageRequest(limit=100, after=None)
        sql, values = start_page.statement(provider_id, rules, search, now, request)
        # The service reads the type's terms once per process and checks them in the
        # page's own statement, so a warm listing is this one statement.
        text = "\\set k random(0, 9999)\n" + pgbench.script(
            sql, values, {"start_from": _from_offset(base), "scan_from": _from_offset(base)}
        )
        beside(pg, "start times", text, count, figures["start_times"])
        # The same pages of a weekly series' starts (every occurrence free: each page's
        # candidates all pass, the set-based check alone).
        figures["start_times_x12"] = await measure(
            "starts x12",
            pg,
            svc,
            [page_paths(starts, query=f"&repeat_count={SERIES_WEEKS}") for _ in range(rounds)],
            200,
        )
        plain = figures["start_times"]["service_cpu_ms"] + figures["start_times"]["postgres_cpu_ms"]
        x12 = figures["start_times_x12"]
        x12["of_plain"] = round((x12["service_cpu_ms"] + x12["postgres_cpu_ms"]) / plain, 2)
        print(f"{'':<12} start times x12: {x12['of_plain']} of plain's CPU", flush=True)

    # Reserve from the last slots back (the listings above read the first 10,000): the
    # request numbered i, over all rounds, is client i's reserve of the i-th slot from
    # the end; its confirm below is client i's too.
    reserves = [
        Request("POST", f"/clients/{people[i]}/reserve", {"slot_id": slots[-1 - i]}, headers)
        for i in range(rounds * count)
    ]
    held: list[str] = []
    figures["reserve"] = await measure(
        "reserve",
        pg,
        svc,
        _in_rounds(reserves, count),
        201,
        lambda result: held.extend(json.loads(body)["id"] for body in result.bodies),
    )
    # pgbench: the reserve statement alone (what the service sends without a key), on
    # other slots and clients; two small lookups per transaction pick the pair.
    await _pairs(pg, "reserve_pairs", list(zip(people[rounds * count :], pg_slots, strict=True)))
    reserve_values = {
        "now": now,
        "expires_at": now + timedelta(minutes=30),
        "bookable_after": now + timedelta(days=1),
        "max_holds": 3,
    }
    text = _walk("reserve_pairs") + pgbench.script(
        one_statement.RESERVE_SQL,
        reserve_values,
        {"id": "gen_random_uuid()", "client_id": ":client_id", "slot_id": ":other"},
    )
    beside(pg, "reserve", text, count, figures["reserve"])

    confirms = [
        Request("POST", f"/clients/{people[i]}/confirm", {"reservation_id": held[i]}, headers)
        for i in range(rounds * count)
    ]
    figures["confirm"] = await measure("confirm", pg, svc, _in_rounds(confirms, count), 200)
    db = await asyncpg.connect(asyncpg_dsn(pg.url))
    made = await db.fetch(
        "SELECT client_id::text, id::text FROM reservations WHERE slot_id = ANY($1::uuid[])"
        " AND status = 'held'",
        [uuid.UUID(slot) for slot in pg_slots],
    )
    await db.close()
    await _pairs(pg, "confirm_pairs", [(row[0], row[1]) for row in made])
    text = _walk("confirm_pairs") + pgbench.script(
        one_statement.CONFIRM_SQL,
        {"now": now},
        {"client_id": ":client_id", "reservation_id": ":other"},
    )
    beside(pg, "confirm", text, len(made), figures["confirm"])

    if "/providers/{provider_id}/sessions" in document["paths"]:
        group = httpx.post(
            f"{svc.base}/providers/{provider}/appointment-types",
            json={"name": "Class", "duration_minutes": 15, "capacity": 500},
            headers=headers,
        ).json()

        # Each session opened first (the step-by-step path: a span claimed, a session
        # made), measured on its own; then the joins, the common case, in rounds.
        def opening(pairs: Iterable[tuple[str, str]]) -> list[Request]:
            return [
                Request(
                    "POST",
                    f"/clients/{opener}/reserve",
                    {"slot_id": start, "appointment_type_id": group["id"]},
                    headers,
                )
                for opener, start in pairs
            ]

        warm = await loadgen.run(
            "127.0.0.1",
            svc.port,
            opening(zip(warm_openers, warm_starts, strict=True)),
            concurrency=CONNECTIONS,
        )
        assert warm.status == [201] * WARM_OPENS, sorted(set(warm.status))
        opens = opening(zip(openers, seat_starts, strict=True))
        figures["seat_open"] = await measure("seat open", pg, svc, [opens], 201)
        seat_reserves = [
            Request(
                "POST",
                f"/clients/{seat_people[i]}/reserve",
                {
                    "slot_id": seat_starts[i // SEATS_PER_SESSION],
                    "appointment_type_id": group["id"],
                },
                headers,
            )
            for i in range(rounds * count)
        ]
        figures["seat_reserve"] = await measure(
            "seat join", pg, svc, _in_rounds(seat_reserves, count), 201
        )
    if "/clients/{client_id}/series" in document["paths"]:
        series = [
            Request(
                "POST",
                f"/clients/{series_people[i]}/series",
                {
                    "slot_id": series_slots[i // WEEK * WEEK * SERIES_WEEKS + i % WEEK],
                    "repeat": {"count": SERIES_WEEKS},
                },
                headers,
            )
            for i in range(series_count)
        ]
        figures["series"] = await measure(
            f"series x{SERIES_WEEKS}",
            pg,
            svc,
            _in_rounds(series, series_count // rounds),
            201,
            _check_series,
        )
        # The goal: a series costs less than its occurrences booked one by one.
        one = figures["reserve"]
        single = one["service_cpu_ms"] + one["postgres_cpu_ms"]
        whole = figures["series"]["service_cpu_ms"] + figures["series"]["postgres_cpu_ms"]
        figures["series"]["of_single_reserves"] = round(whole / (SERIES_WEEKS * single), 2)
        print(
            f"{'':<12} series x{SERIES_WEEKS}: service + PostgreSQL {whole:.2f} ms, "
            f"{SERIES_WEEKS} reserves {SERIES_WEEKS * single:.2f} ms: "
            f"{figures['series']['of_single_reserves']} of it",
            flush=True,
        )
    return figures


def _check_series(result: loadgen.Result) -> None:
    """Every series held all its weeks (the figures are for whole series)."""
    for body in result.bodies:
        assert len(json.loads(body)["reservations"]) == SERIES_WEEKS, body[:300]


# Seats each session of the seat-reserve round gets (the type's capacity is 500).
SEATS_PER_SESSION = 100
WARM_OPENS = 400
# Weekly series: occurrences each, slots in a week (the provider's zone is UTC), and
# series per round at most.
SERIES_WEEKS = 12
WEEK = 7 * 24 * 4
SERIES_PER_ROUND = 300


def main(
    count: int,
    rounds: int = 3,
    fast_paths: bool = True,
    workers: int = 4,
    busy: bool = False,
) -> dict[str, Any]:
    # Delivery off: a confirmation's email (an invite rendered and written to ./mail
    # by the API's own worker) is the outbox's work, measured by bench.notify; here
    # only the requests' own cost counts.
    with (
        postgres() as pg,
        service(
            pg.url,
            workers=workers,
            delivery_interval_seconds="0",
            fast_paths="true" if fast_paths else "false",
        ) as svc,
    ):
        return asyncio.run(run(pg, svc, count, rounds, busy))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round")
    parser.add_argument(
        "--profile", type=Path, help="record each path with py-spy into this folder and summarise"
    )
    parser.add_argument(
        "--no-fast-paths",
        action="store_true",
        help="every request through FastAPI (APPOINTMENTS_FAST_PATHS=false), to compare",
    )
    parser.add_argument("--workers", type=int, default=4, help="service worker processes")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="busy time from another calendar over the listed slots (one hour in five)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per path; the median round is reported"
    )
    parser.add_argument(
        "--client-preempts",
        action="store_true",
        help="run the load generator as a normal task, which preempts the service's workers "
        "when a response wakes it (how it ran before session 8); see yielding_client",
    )
    args = parser.parse_args()
    CLIENT_PREEMPTS = args.client_preempts
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE_DIR = args.profile
    figures = main(
        args.requests,
        args.rounds,
        fast_paths=not args.no_fast_paths,
        workers=args.workers,
        busy=args.busy,
    )
    print(json.dumps(figures, indent=2))
