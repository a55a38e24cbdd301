"""A real webhook receiver on loopback: records every request, can fail first attempts,
can answer slowly, and notices when one message is being delivered twice at once."""

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    answered_ok: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlaps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        message_id = headers.get("webhook-id", "")
        with self.lock:
            self.received.append(Received(headers, body))
            if self.in_flight[message_id]:
                self.overlaps.append(message_id)
            self.in_flight[message_id] += 1
            tries = sum(1 for item in self.received if item.id == message_id)
        try:
            time.sleep(self.delay_seconds)
        finally:
            with self.lock:
                self.in_flight[message_id] -= 1
        if tries <= self.fail_first:
            return 503
        with self.lock:
            self.answered_ok[message_id] += 1
        return 204

    def ids(self) -> set[str]:
        with self.lock:
            return {item.id for item in self.received}

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Until `count` distinct messages were answered 2xx."""
        deadline = time.monotonic() + timeout
        while len(self.answered_ok) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.answered_ok)} of {count} messages arrived")
            time.sleep(0.05)


@contextmanager
def receiver(fail_first: int = 0, delay_seconds: float = 0.0) -> Iterator[Receiver]:
    """Serve on 127.0.0.1 in a thread while the block runs."""
    state = Receiver(url="", fail_first=fail_first, delay_seconds=delay_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        # The default backlog of 5 drops bursts of connections (a worker sends dozens).
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
