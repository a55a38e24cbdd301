"""Where a calendar's busy time is read from, one implementation per kind.

The rules (what blocks time, how it meets the slots) never see which kind a calendar
is: a source answers iCalendar texts for a window, and `busy.ical` reads them all
alike. A new kind (an OAuth connector for Google or Microsoft) is one more class here
and one more value of `CalendarKind`.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from appointments.busy import fetch
from appointments.busy.dav import DavCalendar
from appointments.busy.models import CalendarKind
from appointments.settings import Settings


class Source(Protocol):
    async def read(self, start: datetime, end: datetime) -> Sequence[bytes | str]:
        """The calendar's iCalendar texts covering [start, end); raises
        `fetch.FetchError` with the reason when it cannot be read."""
        ...


class Feed:
    """A published iCal address (Google's or Outlook's secret address, any .ics URL):
    the whole feed, read over HTTP."""

    def __init__(self, settings: Settings, url: str, auth: tuple[str, str] | None) -> None:
        self.settings, self.url, self.auth = settings, url, auth

    async def read(self, start: datetime, end: datetime) -> Sequence[bytes | str]:
        return [await fetch.fetch(self.settings, self.url, self.auth)]


def source(settings: Settings, kind: str, url: str, auth: tuple[str, str] | None) -> Source:
    if kind == CalendarKind.CALDAV:
        return DavCalendar(settings, url, auth)
    return Feed(settings, url, auth)
