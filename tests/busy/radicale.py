"""A real CalDAV server for the tests: Radicale, started as its own process on a free
port with one user (basic auth, the password in a plain htpasswd file), its
collections in a temporary folder. Tests make a calendar each, put events into it
over HTTP as a calendar app would, and read back what the service wrote."""

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import icalendar

USER, PASSWORD = "ada", "calendar-password"


@dataclass
class Radicale:
    process: "subprocess.Popen[bytes]"
    base: str

    @property
    def auth(self) -> tuple[str, str]:
        return USER, PASSWORD

    def _http(self) -> httpx.Client:
        return httpx.Client(auth=self.auth, timeout=10)

    def make_calendar(self) -> str:
        """A new, empty calendar collection; its URL (ending in /)."""
        url = f"{self.base}/{USER}/{uuid.uuid4().hex}/"
        with self._http() as http:
            answer = http.request("MKCALENDAR", url)
        assert answer.status_code == 201, answer.text
        return url

    def put(self, calendar: str, name: str, text: str) -> None:
        with self._http() as http:
            answer = http.put(
                f"{calendar}{name}.ics", content=text, headers={"Content-Type": "text/calendar"}
            )
        assert answer.status_code in (201, 204), answer.text

    def delete(self, calendar: str, name: str) -> None:
        with self._http() as http:
            assert http.delete(f"{calendar}{name}.ics").status_code in (200, 204)

    def names(self, calendar: str) -> list[str]:
        """The calendar objects' file names, sorted (a PROPFIND of depth 1)."""
        with self._http() as http:
            answer = http.request("PROPFIND", calendar, headers={"Depth": "1"})
        assert answer.status_code == 207, answer.text
        found = []
        for href in answer.text.split("<D:href>" if "<D:href>" in answer.text else "<href>")[1:]:
            path = href.split("<", 1)[0]
            if path.endswith(".ics"):
                found.append(path.rsplit("/", 1)[1])
        return sorted(found)

    def events(self, calendar: str) -> list[icalendar.Event]:
        """Every VEVENT the calendar holds (Radicale answers a GET of a collection with
        all its objects as one iCalendar)."""
        with self._http() as http:
            answer = http.get(calendar)
        assert answer.status_code == 200, answer.text
        found = icalendar.Calendar.from_ical(answer.text).walk("VEVENT")
        return [event for event in found if isinstance(event, icalendar.Event)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(folder: Path) -> Radicale:
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "radicale",
        f"--storage-filesystem-folder={folder / 'collections'}",
        "--auth-type=htpasswd",
        f"--auth-htpasswd-filename={users}",
        "--auth-htpasswd-encryption=plain",
        f"--server-hosts=127.0.0.1:{port}",
        "--logging-level=warning",
        "--auth-delay=0",  # a refused password answers at once
        "--server-delay-on-error=0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Radicale did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            httpx.get(f"{base}/.web/", timeout=1)
            return Radicale(process, base)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("Radicale did not answer within 20 s")
