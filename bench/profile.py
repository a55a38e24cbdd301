"""py-spy over the service's workers while a load runs, summarised by where the
samples land: `with sampled(pid, out): ...`, then `summary(out)`.

Samples are grouped by the file of their innermost frame (the code that was
running): our code, SQLAlchemy, asyncpg, FastAPI and Starlette, pydantic, uvicorn,
asyncio, and the rest. Profiling slows the service, so a profiled run is not a
measured one.
"""

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
# py-spy names a frame "function (package/module.py:line)". Compiled code (asyncpg's
# protocol, uvloop, httptools, pydantic-core) shows as the Python frame that called it:
# "event loop" is uvloop's own work (sockets, callbacks) under asyncio's runner.
GROUPS = (
    ("appointments", "(appointments/"),
    ("SQLAlchemy", "(sqlalchemy/"),
    ("asyncpg", "(asyncpg/"),
    ("FastAPI", "(fastapi/"),
    ("Starlette", "(starlette/"),
    ("pydantic", "(pydantic"),
    ("uvicorn", "(uvicorn/"),
    ("event loop", "(asyncio/"),
    ("logging", "(logging/"),
    ("json", "(json/"),
)


@contextmanager
def sampled(pid: int, out: Path, rate: int = 250) -> Iterator[None]:
    """Record the process and its children (uvicorn's workers) while the block runs."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    command += ["--format", "raw", "--rate", str(rate), "--output", str(out)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # attaching to every worker takes a moment
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)


def _group(frame: str) -> str:
    for name, marker in GROUPS:
        if marker in frame:
            return name
    return "other"


def summary(path: Path, top: int = 8) -> list[str]:
    """Share of samples per group (innermost frame) and the busiest functions."""
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.startswith("process ") or "(idle)" in leaf or "spawn_main" in leaf:
            continue  # a process waiting, not running Python
        samples = int(count)
        total += samples
        groups[_group(leaf)] += samples
        leaves[leaf] += samples
    if not total:
        return ["no samples"]
    lines = [
        "by innermost frame: "
        + ", ".join(f"{name} {100 * n / total:.0f} %" for name, n in groups.most_common())
    ]
    lines += [f"  {100 * n / total:4.1f} %  {leaf}" for leaf, n in leaves.most_common(top)]
    return lines
