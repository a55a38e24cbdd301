"""A Monday-to-Sunday week in the viewer's time zone, and things grouped into its days."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")


@dataclass
class Day(Generic[T]):
    date: date
    items: list[T] = field(default_factory=list)


@dataclass(frozen=True)
class Week:
    monday: date
    zone: ZoneInfo

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> "Week":
        day = moment.astimezone(zone).date()
        return cls(day - timedelta(days=day.weekday()), zone)

    @classmethod
    def parse(cls, value: str | None, default: datetime, zone: ZoneInfo) -> "Week":
        """`?week=YYYY-MM-DD` (any day of the week), else the week of `default`."""
        if value:
            try:
                day = date.fromisoformat(value)
                if date(1971, 1, 1) <= day <= date(8999, 1, 1):
                    return cls(day - timedelta(days=day.weekday()), zone)
            except ValueError:
                pass
        return cls.containing(default, zone)

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=i) for i in range(7)]

    @property
    def start(self) -> datetime:
        """Local midnight starting Monday (a real instant, DST-aware)."""
        return datetime.combine(self.monday, time(), self.zone)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.monday + timedelta(days=7), time(), self.zone)

    @property
    def previous(self) -> str:
        return (self.monday - timedelta(days=7)).isoformat()

    @property
    def next(self) -> str:
        return (self.monday + timedelta(days=7)).isoformat()

    def group(self, items: Iterable[T], when: Callable[[T], datetime]) -> list[Day[T]]:
        days = {d: Day[T](d) for d in self.days}
        for item in items:
            local_day = when(item).astimezone(self.zone).date()
            if local_day in days:
                days[local_day].items.append(item)
        return list(days.values())
