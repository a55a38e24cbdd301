"""The sweeper's loop stops when cancelled (Ctrl-C, shutdown), even when the sweep it
interrupted turned the cancellation into an error of its own, as a database driver
cut off mid-statement may: the CLI's sweeper once kept running after SIGINT so."""

import asyncio
from typing import Any

import pytest

from appointments.booking import sweeper
from appointments.clock import SystemClock


def test_a_cancelled_sweep_stops_the_loop_whatever_it_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sweeping = asyncio.Event()
    sweeps = 0

    async def sweep_that_hides_its_cancellation(*_args: Any) -> int:
        nonlocal sweeps
        sweeps += 1
        sweeping.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if sweeps > 1:
                raise  # only the first is hidden, so a failing run ends (as a failure)
            raise RuntimeError("connection was closed in the middle of operation") from None
        return 0

    monkeypatch.setattr(sweeper, "sweep_once", sweep_that_hides_its_cancellation)

    async def scenario() -> None:
        loop = asyncio.create_task(sweeper.run_sweeper(None, SystemClock(), 0.001))  # type: ignore[arg-type]
        await sweeping.wait()
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(loop, timeout=2)

    asyncio.run(scenario())
    assert sweeps == 1
