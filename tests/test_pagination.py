"""Cursors: written without the JSON encoder, they are the very cursors it made."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from appointments.errors import ValidationFailed
from appointments.pagination import Keyset, decode_cursor, encode_cursor


def _by_encoder(position: Keyset) -> str:
    raw = json.dumps([position.at.isoformat(), position.id.hex]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "at",
    [
        datetime(2027, 3, 4, 9, 15, tzinfo=UTC),
        datetime(2027, 3, 4, 9, 15, 0, 1, tzinfo=UTC),
        datetime(2027, 3, 4, 9, 15, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1, 1, 1, tzinfo=UTC),
    ],
)
def test_a_cursor_is_the_encoder_s_and_reads_back(at: datetime) -> None:
    position = Keyset(at=at, id=uuid.uuid4())
    cursor = encode_cursor(position)
    assert cursor == _by_encoder(position)
    if at.year > 1:
        assert decode_cursor(cursor) == position


def test_a_cursor_not_ours_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(base64.urlsafe_b64encode(b'["2027-03-04T09:15:00", "00"]').decode())
