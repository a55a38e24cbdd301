"""Keyset pagination: opaque cursors over an ordered (time, id) key, and the page shape."""

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from appointments.errors import ValidationFailed
from appointments.schemas import EARLIEST, LATEST

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


@dataclass(frozen=True)
class Keyset:
    """The position after which the next page starts."""

    at: datetime
    id: uuid.UUID


def encode_cursor(position: Keyset) -> str:
    # The text json.dumps([time, hex]) makes (neither holds a character JSON escapes),
    # written out: every listing page makes one, and the encoder cost more than the rest.
    raw = f'["{position.at.isoformat()}", "{position.id.hex}"]'.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Keyset:
    """The position a cursor names; anything this service could not have issued
    (whatever JSON it decodes to) is a ValidationFailed (422), never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise _not_ours() from exc
    # Exactly [time text, id text]: a crafted cursor may decode to any JSON value,
    # and an int, a dict or a two-letter string would each slip through unpacking.
    if not (
        isinstance(decoded, list)
        and len(decoded) == 2
        and all(isinstance(part, str) for part in decoded)
    ):
        raise _not_ours()
    try:
        position = Keyset(at=datetime.fromisoformat(decoded[0]), id=uuid.UUID(hex=decoded[1]))
    except ValueError as exc:
        raise _not_ours() from exc
    if position.at.tzinfo is None or not EARLIEST <= position.at <= LATEST:
        raise _not_ours()
    return position


def _not_ours() -> ValidationFailed:
    return ValidationFailed("cursor is not a cursor this service issued")


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: Keyset | None


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageRequest:
    """Query parameters shared by every list endpoint."""
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


RowT = TypeVar("RowT")


def split_page(
    rows: Sequence[RowT], request: PageRequest, key: Callable[[RowT], Keyset]
) -> tuple[Sequence[RowT], str | None]:
    """Cut the extra look-ahead row off a query result and make the cursor for what follows."""
    if len(rows) <= request.limit:
        return rows, None
    kept = rows[: request.limit]
    return kept, encode_cursor(key(kept[-1]))


def page_body(items: str, next_key: Keyset | None) -> bytes:
    """A page's JSON around items that are JSON text already (built by the database);
    `next_key`: the last item's key when more follow."""
    cursor = "null" if next_key is None else f'"{encode_cursor(next_key)}"'  # base64url
    return f'{{"items":{items},"next_cursor":{cursor}}}'.encode()
