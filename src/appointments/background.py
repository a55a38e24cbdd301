"""What every background loop (the sweeper, the delivery worker, the roller, the
calendar reader) shares."""

import asyncio
import logging
from collections.abc import Awaitable, Callable


def stop_if_cancelled() -> None:
    """Inside a loop's `except Exception`: re-raise the cancellation that a failure stands
    for. A driver interrupted mid-statement may turn the CancelledError of a Ctrl-C or a
    shutdown into an error of its own; logged and retried, it would keep the loop (and
    its process) running for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def every(
    seconds: float, step: Callable[[], Awaitable[None]], what: str, logger: logging.Logger
) -> None:
    """Run `step`, then wait `seconds`, for ever; a failed step (database away) is logged
    and tried again next round."""
    while True:
        try:
            await step()
        except Exception:
            stop_if_cancelled()
            logger.exception("%s failed; retrying in %ss", what, seconds)
        await asyncio.sleep(seconds)
