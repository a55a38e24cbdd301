"""Reading a feed over HTTP: bounded in time and size, public addresses only (the
webhooks' guard), no redirects followed (a feed that moved says where, as an error)."""

import httpx

from appointments import addresses
from appointments.addresses import AddressNotAllowed
from appointments.settings import Settings

MAX_FEED_BYTES = 10 * 1024 * 1024
TIMEOUT_SECONDS = 20
_CALENDAR_TYPES = ("text/calendar", "text/plain", "application/octet-stream", "application/ics")


class FetchError(Exception):
    """The feed could not be read; the message says why, for the calendar's last_error."""


async def check_address(settings: Settings, url: str) -> None:
    try:
        await addresses.check(url, private_allowed=settings.webhooks_may_reach_private())
    except AddressNotAllowed as exc:
        raise FetchError(f"{exc}; calendars are read from public addresses only") from None


async def fetch(settings: Settings, url: str, auth: tuple[str, str] | None = None) -> bytes:
    """The body of the feed at `url` (checked again before each read: DNS may change)."""
    await check_address(settings, url)
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client,
            client.stream("GET", url, auth=auth, headers={"Accept": "text/calendar"}) as answer,
        ):
            if answer.is_redirect:
                where = answer.headers.get("location", "?")
                raise FetchError(f"the feed redirects ({answer.status_code}) to {where}")
            if answer.status_code != 200:
                raise FetchError(f"the feed answered HTTP {answer.status_code}")
            kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in _CALENDAR_TYPES:
                raise FetchError(f"the feed is {kind}, not text/calendar")
            body = bytearray()
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    raise FetchError(f"the feed is over {MAX_FEED_BYTES // (1024 * 1024)} MB")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise FetchError(f"the feed could not be read: {type(exc).__name__}: {exc}") from exc
