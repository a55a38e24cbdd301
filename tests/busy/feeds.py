"""Feeds the calendar tests and `bench.busy` read."""

from collections import Counter
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def big_feed(start: datetime) -> bytes:
    """5,000 events from `start` on: 4,000 single ones of 45 minutes, every 4 hours, and
    1,000 weekly series of 10 half hours (UIDs `single-i@bench`, `weekly-i@bench`)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//busy//EN"]
    stamp = "%Y%m%dT%H%M%SZ"
    for i in range(4_000):
        begins = start + timedelta(hours=4 * i + 1)
        lines += [
            "BEGIN:VEVENT",
            f"UID:single-{i}@bench",
            f"DTSTART:{begins:{stamp}}",
            f"DTEND:{begins + timedelta(minutes=45):{stamp}}",
            "END:VEVENT",
        ]
    for i in range(1_000):
        begins = start + timedelta(days=i % 300, minutes=15 * (i % 40))
        lines += [
            "BEGIN:VEVENT",
            f"UID:weekly-{i}@bench",
            f"DTSTART:{begins:{stamp}}",
            f"DTEND:{begins + timedelta(minutes=30):{stamp}}",
            "RRULE:FREQ=WEEKLY;COUNT=10",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class Feeds:
    """A local HTTP server whose answers the test sets per path."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.auth: str | None = None
        self.requested: Counter[str] = Counter()  # GETs per path
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                feeds.requested[self.path] += 1
                status, headers, body = feeds.answers.get(self.path, (404, {}, b""))
                if feeds.auth is not None and self.headers.get("Authorization") != feeds.auth:
                    status, headers, body = 401, {}, b""
                self.send_response(status)
                for name, value in {"Content-Type": "text/calendar", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> str:
        self.answers[path] = (status, headers, body)
        return self.base + path
