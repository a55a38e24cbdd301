"""What every background loop (the sweeper, the delivery worker) shares."""

import asyncio


def stop_if_cancelled() -> None:
    """Inside a loop's `except Exception`: re-raise the cancellation that a failure stands
    for. A driver interrupted mid-statement may turn the CancelledError of a Ctrl-C or a
    shutdown into an error of its own; logged and retried, it would keep the loop (and
    its process) running for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
