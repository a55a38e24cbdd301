"""Hostile form values on every page form, as the role it is for: never a 5xx,
and an answer that is an HTML page."""

from collections.abc import Callable

import pytest

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.web.browser import Browser

NASTY = [
    "",
    " ",
    "0",
    "-1",
    "0001-01-01",
    "9999-12-31",
    "2027-02-30",
    "24:00",
    "23:59",
    "99:99",
    "\u0000",
    "é" * 300,
    "x" * 5000,
    "'; DROP TABLE slots; --",
    "<script>alert(1)</script>",
    "00000000-0000-0000-0000-000000000000",
    "Mars/Base",
    "../../etc/passwd",
]
FORMS: dict[str, tuple[Role, list[str]]] = {
    "/signup": (Role.CLIENT, ["name", "email"]),
    "/book/hold": (Role.CLIENT, ["slot_id", "provider", "week"]),
    "/provider/publish": (Role.PROVIDER, ["start_date", "end_date", "start", "end", "weekday"]),
    "/manage/providers": (Role.ADMIN, ["name", "timezone", "email"]),
}
GOOD = {
    "start_date": "2027-03-04",
    "end_date": "2027-03-05",
    "start": "09:00",
    "end": "10:00",
    "weekday": "thu",
    "name": "Dr Fuzz",
    "timezone": "UTC",
    "email": "fuzz@example.com",
}


@pytest.mark.parametrize("path", sorted(FORMS))
def test_hostile_values_never_break_a_form(
    api: Api, new_browser: Callable[[], Browser], path: str
) -> None:
    role, fields = FORMS[path]
    visitor = new_browser()
    if role is Role.CLIENT:
        visitor.sign_up()
    else:
        subject = api.provider("Dr Desk")["id"] if role is Role.PROVIDER else "fuzz-admin"
        visitor.sign_in(bearer(role, subject)["Authorization"].removeprefix("Bearer "))
    for field in fields:
        for value in NASTY:
            form = {name: GOOD.get(name, "") for name in fields} | {field: value}
            answer = visitor.submit(path, form, from_page="/")
            assert answer.status_code < 500, (path, field, value[:40])
            assert answer.headers["content-type"].startswith("text/html"), (path, field)
            assert "<script>alert(1)</script>" not in answer.text
