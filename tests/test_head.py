"""HEAD on every GET route answers as GET does, without the body."""

from datetime import timedelta

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.conftest import START

DAY = START + timedelta(days=3)


def test_head_is_get_without_the_body(api: Api) -> None:
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=1))
    kind = api.appointment_type(provider["id"])
    client = api.customer()
    paths = [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/providers",
        f"/providers/{provider['id']}",
        f"/providers/{provider['id']}/availability",  # a fast path
        f"/providers/{provider['id']}/appointment-types/{kind['id']}/availability",
        f"/clients/{client['id']}/reservations",
        f"/clients/{client['id']}/reservations.ics",
        "/providers/not-an-id",  # an error: its status and problem headers
    ]
    for path in paths:
        got = api.client.get(path)
        head = api.client.head(path)
        assert head.status_code == got.status_code, (path, head.status_code, head.text)
        assert head.content == b"", path
        for header in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(header) == got.headers.get(header), (path, header)
    as_client = bearer(Role.CLIENT, client["id"])
    page = api.client.get("/bookings", headers=as_client)
    head = api.client.head("/bookings", headers=as_client)
    assert (head.status_code, head.content) == (page.status_code, b"")
    # A route without GET still says which methods it takes.
    refused = api.client.head(f"/clients/{client['id']}/reserve")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
