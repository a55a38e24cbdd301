"""Cursors: written without the JSON encoder, they are the very cursors it made."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from appointments.auth.tokens import Role
from appointments.errors import ValidationFailed
from appointments.pagination import Keyset, decode_cursor, encode_cursor
from tests.api import Api, bearer


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


def _crafted(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        # The time is fine, so only the id can be what is refused.
        ["2027-03-04T09:15:00+00:00", "00"],
        ["2027-03-04T09:15:00+00:00", 5],
        ["2027-03-04T09:15:00+00:00", None],
        ["2027-03-04T09:15:00+00:00", ["a"]],
        # A valid id, so only the time can be what is refused.
        ["2027-03-04T09:15:00", uuid.UUID(int=1).hex],
        [5, uuid.UUID(int=1).hex],
        ["0001-01-01T00:00:00+00:00", uuid.UUID(int=1).hex],
        # Not the shape at all: each of these unpacks into two names.
        "ab",
        {"at": 1, "id": 2},
        ["2027-03-04T09:15:00+00:00", uuid.UUID(int=1).hex, 3],
    ],
)
def test_a_cursor_not_ours_is_refused(value: object) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(_crafted(value))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(value=JSON)
@example(value=["2027-01-01T00:00:00+00:00", 5])
def test_no_decoded_json_escapes_as_anything_but_a_refusal(value: object) -> None:
    try:
        position = decode_cursor(_crafted(value))
    except ValidationFailed:
        return
    # What it did take is a position this service could have issued.
    assert decode_cursor(encode_cursor(position)) == position


@given(cursor=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_no_text_escapes_as_anything_but_a_refusal(cursor: str) -> None:
    try:
        decode_cursor(cursor)
    except ValidationFailed:
        pass


CRAFTED = _crafted(["2027-01-01T00:00:00+00:00", 5])


def test_every_list_and_page_answers_a_crafted_cursor_with_422(api: Api) -> None:
    provider = api.provider()
    client = api.customer()
    kind = api.appointment_type(provider["id"])
    hook = api.ok("POST", "/webhooks", 201, json={"url": "https://example.com/hook"})
    lists = [
        "/providers",
        "/clients",
        f"/providers/{provider['id']}/availability",
        f"/providers/{provider['id']}/appointment-types",
        f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability",
        f"/clients/{client['id']}/reservations",
        f"/providers/{provider['id']}/reservations",
        "/webhooks",
        f"/webhooks/{hook['id']}/deliveries",
    ]
    for path in lists:
        response = api.client.get(path, params={"cursor": CRAFTED})
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "validation_error", path
    client_page = {"Authorization": bearer(Role.CLIENT, client["id"])["Authorization"]}
    for path, headers in (("/book", client_page), ("/manage", {})):
        response = api.client.get(path, params={"cursor": CRAFTED}, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert "cursor is not a cursor this service issued" in response.text
