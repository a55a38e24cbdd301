"""A CalDAV calendar (RFC 4791) through the `caldav` library: its events read for busy
time, and the service's bookings written to it and removed from it.

The calendar is addressed by its collection URL (what Nextcloud, Fastmail, iCloud and
Radicale show as the calendar's CalDAV link); no discovery is done (a discovered
address would skip the public-address check). The address is checked before each
use, as webhooks are; redirects are refused, as for feeds. Events are asked for by a
time-range REPORT without the server's expansion (servers disagree on it) and
expanded here with the feeds' reading (`busy.ical`), so that both kinds of calendar
mean the same thing.
"""

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import caldav
from caldav.lib import error as dav_error

from appointments.busy.fetch import MAX_FEED_BYTES, TIMEOUT_SECONDS, FetchError, check_address
from appointments.settings import Settings

T = TypeVar("T")


def resource_url(collection: str, name: str) -> str:
    """Where the calendar object `name` (without `.ics`) lives in the collection."""
    return f"{collection.rstrip('/')}/{quote(name, safe='')}.ics"


class DavCalendar:
    """One CalDAV collection with the provider's credentials.

    The library's client is synchronous (its 2.2 line, on `requests`: the later lines
    bring `niquests`, whose `urllib3-future` replaces urllib3 under every other
    package); each call runs in a worker thread, off the event loop."""

    def __init__(self, settings: Settings, url: str, auth: tuple[str, str] | None) -> None:
        self.settings = settings
        self.url = url
        self.auth = auth

    async def _run(self, work: Callable[[caldav.DAVClient], T]) -> T:
        await check_address(self.settings, self.url)
        return await asyncio.to_thread(self._call, work)

    def _call(self, work: Callable[[caldav.DAVClient], T]) -> T:
        with self._client() as client:
            return work(client)

    @contextmanager
    def _client(self) -> Iterator[caldav.DAVClient]:
        username, password = self.auth if self.auth is not None else (None, None)
        try:
            client = caldav.DAVClient(
                url=self.url,
                username=username,
                password=password,
                timeout=TIMEOUT_SECONDS,
                enable_rfc6764=False,
            )
            # A calendar that moved says so as an error; following it could lead
            # anywhere, past the address check.
            client.session.max_redirects = 0
            with client:
                yield client
        except FetchError:
            raise
        except dav_error.AuthorizationError as exc:
            raise FetchError(f"the CalDAV server refused the credentials: {exc.reason}") from exc
        except dav_error.NotFoundError as exc:
            raise FetchError(f"the CalDAV calendar was not found: {exc.reason}") from exc
        except dav_error.DAVError as exc:
            raise FetchError(f"the CalDAV server answered an error: {exc.reason}") from exc
        except Exception as exc:  # the HTTP library's own (connection, redirects, timeouts)
            raise FetchError(f"the CalDAV calendar could not be reached: {exc}") from exc

    async def read(self, start: datetime, end: datetime) -> list[str]:
        """The calendar objects with an event between `start` and `end` (each an
        iCalendar text, recurring events as their whole series)."""

        def search(client: caldav.DAVClient) -> list[str]:
            calendar = caldav.Calendar(client=client, url=self.url)
            found: list[Any] = calendar.search(start=start, end=end, event=True, expand=False)
            return [str(item.data) for item in found if item.data]

        texts = await self._run(search)
        if sum(len(text) for text in texts) > MAX_FEED_BYTES:
            raise FetchError(f"the calendar's events are over {MAX_FEED_BYTES // 2**20} MB")
        return texts

    async def put(self, name: str, text: str) -> None:
        """Create or replace the object `name` (idempotent: the same name each time)."""

        def put(client: caldav.DAVClient) -> int:
            headers = {"Content-Type": "text/calendar; charset=utf-8"}
            status: int = client.put(resource_url(self.url, name), text, headers).status
            return status

        status = await self._run(put)
        if status not in (200, 201, 204):
            raise FetchError(f"the CalDAV server answered HTTP {status} to the write")

    async def delete(self, name: str) -> None:
        """Remove the object `name`; one already gone is fine (a retry, a manual delete)."""

        def delete(client: caldav.DAVClient) -> int:
            status: int = client.delete(resource_url(self.url, name)).status
            return status

        status = await self._run(delete)
        if status not in (200, 204, 404, 410):
            raise FetchError(f"the CalDAV server answered HTTP {status} to the delete")
