"""A small, fast HTTP/1.1 load generator on raw asyncio streams (keep-alive).

httpx costs more CPU per request than the service under test; this client parses
only the status line, headers and a Content-Length body. Its own CPU time is
reported so it can be checked not to be the bottleneck.
"""

import asyncio
import json
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    body: Mapping[str, object] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, host: str) -> bytes:
        payload = json.dumps(self.body).encode() if self.body is not None else b""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if self.body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class Result:
    status: list[int]
    latency: list[float]
    bodies: list[bytes]
    elapsed: float
    client_cpu: float
    # perf_counter() at which each request was sent (its answer came `latency` later).
    started: list[float]

    @property
    def throughput(self) -> float:
        return len(self.status) / self.elapsed if self.elapsed else 0.0

    def most_in_flight(self) -> int:
        """The most requests that were sent and not yet answered at one moment: proof
        that a race really overlapped (1 means they ran one at a time)."""
        edges = sorted(
            [(t, 1) for t in self.started]
            + [(t + d, -1) for t, d in zip(self.started, self.latency, strict=True)]
        )
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        return most

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latency)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def run(
    host: str,
    port: int,
    requests: Sequence[Request],
    concurrency: int,
    *,
    keep_bodies: bool = False,
    rate: float | None = None,
) -> Result:
    """Send every request once, `concurrency` connections at a time; with `rate`, request
    i is sent no sooner than i / rate seconds after the start (an open-loop schedule,
    as far as the connections keep up)."""
    encoded = [r.encode(f"{host}:{port}") for r in requests]
    status = [0] * len(encoded)
    latency = [0.0] * len(encoded)
    started = [0.0] * len(encoded)
    bodies: list[bytes] = [b""] * len(encoded) if keep_bodies else []
    cursor = iter(range(len(encoded)))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in cursor:
                if rate is not None:
                    await asyncio.sleep(start + index / rate - time.perf_counter())
                began = started[index] = time.perf_counter()
                writer.write(encoded[index])
                code, body = await _read_response(reader)
                latency[index] = time.perf_counter() - began
                status[index] = code
                if keep_bodies:
                    bodies[index] = body
        finally:
            writer.close()

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    began = start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(encoded)))))
    elapsed = time.perf_counter() - began
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return Result(status, latency, bodies, elapsed, cpu, started)
