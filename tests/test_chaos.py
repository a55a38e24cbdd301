"""Short, bounded versions of the load benchmarks' correctness checks (PostgreSQL).

The full runs are `make bench`; these keep a regression from landing.
"""

import asyncio

import pytest

from bench import chaos
from bench.harness import postgres, service
from bench.run import bench_contention


@pytest.mark.live
def test_two_hundred_reserves_of_one_slot_across_four_workers_have_one_winner() -> None:
    with postgres() as pg, service(pg.url, workers=4) as svc:
        figures = asyncio.run(bench_contention(pg, svc, 200))
    # They overlapped: at most one at a time would have taken 200 x a round trip each,
    # while the load generator saw many in flight at once.
    assert figures["most_in_flight"] > 1, figures
    assert figures["winners"] == 1
    assert figures["refused_409"] == 199
    assert figures["other"] == 0


@pytest.mark.live
def test_fault_run_loses_no_acknowledged_booking() -> None:
    """A few hundred operations, a worker kill -9 and a database crash-restart."""
    ledger, problems = chaos.run(operations=400, kills=1, sessions=8, seed_value=2026)
    assert problems == []
    assert ledger.outcomes["worker killed"] == 1
    assert ledger.outcomes["database crash-restart"] == 1
    assert ledger.outcomes["POST reserve 201"] > 0
    assert ledger.readyz_failed_during_outage
    # The faults met traffic: requests were in flight when the worker died, and sent
    # (and refused with 503, never 500) while the database was down.
    assert ledger.in_flight_at_kills
    assert all(count > 0 for count in ledger.in_flight_at_kills), ledger.in_flight_at_kills
    assert ledger.sent_while_database_down > 0
    assert ledger.unavailable_seen > 0
