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
