"""Two kinds of page request measured against each other, round by round.

A round's CPU per request on this two-core box moves by 10-30 % from the next (see
bench.cpu), more than the differences some goals are about. So the kinds take turns:
round n of every kind runs before round n + 1 of any, all from the same random
starting points, and what is reported is the median over the rounds of each round's
ratio (service + PostgreSQL CPU per request of one kind over the other's), with the
quartiles of those ratios beside it: drift falls on both sides of every ratio alike.
"""

import random
import statistics
from datetime import datetime, timedelta
from typing import Any

from bench import cpu
from bench.harness import Service
from bench.loadgen import Request
from tests.postgres_server import PostgresServer


def _iso(base: datetime, slot: int) -> str:
    moment = base + timedelta(minutes=15 * slot)
    return moment.isoformat().replace("+00:00", "Z")


async def rounds(
    pg: PostgresServer,
    svc: Service,
    paths: dict[str, str],
    headers: dict[str, str],
    *,
    base: datetime,
    spread: int,
    count: int,
    rounds: int,
) -> dict[str, list[dict[str, Any]]]:
    """Each path (a page's path and query, without `from`) `rounds` times, `count`
    requests a round, each from one of `spread` slots after `base`; after one round of
    each to warm the workers' caches and plans."""
    offsets = [[random.randrange(spread) for _ in range(count)] for _ in range(rounds + 1)]

    def pages(path: str, starts: list[int]) -> list[Request]:
        joiner = "&" if "?" in path else "?"
        made = (f"{path}{joiner}from={_iso(base, k)}" for k in starts)
        return [Request("GET", target, None, headers) for target in made]

    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    for name, path in paths.items():
        await cpu.measure(f"{name} (warm)", pg, svc, [pages(path, offsets[0])], 200)
    for n in range(rounds):
        for name, path in paths.items():
            rows[name].append(await cpu.measure(name, pg, svc, [pages(path, offsets[n + 1])], 200))
    return rows


def ratio(rows: dict[str, list[dict[str, Any]]], kind: str, over: str) -> dict[str, Any]:
    """`kind`'s CPU per request over `over`'s, round by round: the median and quartiles
    of the rounds' ratios, and each side's median CPU."""

    def total(row: dict[str, Any]) -> float:
        return float(row["service_cpu_ms"] + row["postgres_cpu_ms"])

    per_round = [total(a) / total(b) for a, b in zip(rows[kind], rows[over], strict=True)]
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    figures: dict[str, Any] = {
        side: {
            "service_cpu_ms": statistics.median(r["service_cpu_ms"] for r in rows[side]),
            "postgres_cpu_ms": statistics.median(r["postgres_cpu_ms"] for r in rows[side]),
        }
        for side in (kind, over)
    }
    figures["round_ratios"] = [round(r, 3) for r in per_round]
    figures["ratio"] = round(statistics.median(per_round), 3)
    figures["quartiles"] = [round(quartiles[0], 3), round(quartiles[2], 3)]
    print(
        f"{kind} over {over}: {figures['ratio']} (quartiles {figures['quartiles'][0]}"
        f"-{figures['quartiles'][1]} over {len(per_round)} rounds)",
        flush=True,
    )
    return figures
