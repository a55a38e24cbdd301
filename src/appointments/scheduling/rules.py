"""The time-dependent booking rules, each written once.

Every rule is a SQL fragment, made by one function here: the statements written in
SQL (the one-statement reserve and confirm, the listing, the start-time search, the
sweep) put it in their text, and the ORM paths take the very same text as a WHERE
clause (`where`). Where Python must decide the same thing about a row already in
hand (answers, pages), its twin is here too, and `tests/scheduling/test_rules.py`
holds each twin to its SQL over the same cases on both databases.

`slot` / `reservation` name the table or alias the columns belong to ("" for an
unqualified column); `now` names the parameter or expression of the moment.

- A slot is **free**: available, or reserved by a hold that has run out.
- A slot is **held**: reserved by a hold that has not run out.
- A hold is **live** until its `expires_at`; from then on it has **run out** (it
  reads `expired`), whether or not a sweep has written that down yet.
- A reservation is **live** (it occupies its slots): confirmed, or a live hold.
"""

from datetime import datetime

from sqlalchemy import TextClause, bindparam, text

from appointments.db import UTCDateTime


def _of(table: str) -> str:
    return f"{table}." if table else ""


def slot_hold_ran_out(slot: str = "", now: str = ":now") -> str:
    """Still marked reserved, but by a hold that has run out (not yet swept)."""
    s = _of(slot)
    return f"({s}status = 'reserved' AND {s}hold_expires_at <= {now})"


def slot_free(slot: str = "", now: str = ":now") -> str:
    return f"({_of(slot)}status = 'available' OR {slot_hold_ran_out(slot, now)})"


def slot_held(slot: str = "", now: str = ":now") -> str:
    s = _of(slot)
    return f"({s}status = 'reserved' AND {s}hold_expires_at > {now})"


def slot_shown_status(slot: str = "", now: str = ":now") -> str:
    """The status answers show: a slot under a run-out hold reads `available`."""
    return f"CASE WHEN {slot_hold_ran_out(slot, now)} THEN 'available' ELSE {_of(slot)}status END"


def hold_live(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'held' AND {r}expires_at > {now})"


def hold_ran_out(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'held' AND {r}expires_at <= {now})"


def reservation_live(reservation: str = "", now: str = ":now") -> str:
    r = _of(reservation)
    return f"({r}status = 'confirmed' OR {hold_live(reservation, now)})"


def where(fragment: str, now: datetime) -> TextClause:
    """A rule's fragment (made with `now=":now"`) as an ORM condition bound to `now`; the
    bind is unique, so one statement can hold several rules (or one rule twice)."""
    return text(fragment).bindparams(bindparam("now", now, type_=UTCDateTime(), unique=True))


# --- Python twins, for a row already in hand ---------------------------------------


def slot_hold_has_run_out(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    return status == "reserved" and hold_expires_at is not None and hold_expires_at <= now


def slot_is_free(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    return status == "available" or slot_hold_has_run_out(status, hold_expires_at, now)


def hold_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "held" and expires_at > now


def hold_has_run_out(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "held" and expires_at <= now


def reservation_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    return status == "confirmed" or hold_is_live(status, expires_at, now)
