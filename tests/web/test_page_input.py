"""Forms and sign-ins the pages cannot take answer with a 4xx page, never a 500."""

from collections.abc import Callable

import pytest

from appointments.auth.tokens import Role
from tests.api import Api, bearer
from tests.web.browser import Browser
from tests.web.test_appointment_pages import TYPE_FORM, provider_desk

PUBLISH = {"start_date": "2027-03-08", "end_date": "2027-03-12", "weekday": ["mon"]}


@pytest.mark.parametrize(
    ("start", "end"),
    [("09:00", "24:30"), ("24:30", "17:00"), ("24:00", "17:00"), ("9:00", "17:00"), ("²9:00", "x")],
)
def test_publish_hours_that_are_no_time_of_day_answer_the_form_again(
    api: Api, new_browser: Callable[[], Browser], start: str, end: str
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    before = api.slot_states(provider_id)
    answer = desk.submit(
        "/provider/publish", PUBLISH | {"start": start, "end": end}, from_page="/provider"
    )
    assert answer.status_code == 422, answer.text
    assert "Nothing was published: daily hours are HH:MM" in answer.text
    assert 'action="/provider/publish"' in answer.text  # the form, again
    assert api.slot_states(provider_id) == before


def test_publish_until_midnight_as_a_time_input_sends_it(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    answer = desk.submit(
        "/provider/publish", PUBLISH | {"start": "23:00", "end": "00:00"}, from_page="/provider"
    )
    assert answer.status_code == 200, answer.text
    assert "Published 4 new slots." in answer.text


@pytest.mark.parametrize("field", ["duration_minutes", "max_per_day", "buffer_after_minutes"])
@pytest.mark.parametrize("value", ["²", "³", "٣", "1²"])
def test_type_numbers_in_other_scripts_answer_the_form_again(
    api: Api, new_browser: Callable[[], Browser], field: str, value: str
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    answer = desk.submit("/provider/types", TYPE_FORM | {field: value}, from_page="/provider")
    assert answer.status_code == 422, answer.text
    assert "Nothing was saved:" in answer.text
    assert 'action="/provider/types"' in answer.text
    assert api.ok("GET", f"/providers/{provider_id}/appointment-types")["items"] == []


@pytest.mark.parametrize(
    "path", ["/bookings", "/bookings/calendar.ics", "/bookings/{rid}", "/book/holds/{rid}"]
)
def test_a_client_subject_that_is_no_uuid_gets_the_api_s_404(
    api: Api, new_browser: Callable[[], Browser], path: str
) -> None:
    """Any identity provider's subject (`auth0|12345`) signs in; it names no client here."""
    visitor = new_browser()
    as_stranger = bearer(Role.CLIENT, "auth0|12345")
    answer = visitor.get(
        path.format(rid="00000000-0000-4000-8000-000000000000"), headers=as_stranger
    )
    assert answer.status_code == 404, answer.text
    assert "auth0|12345" in answer.text
    api_answer = api.client.get("/clients/auth0|12345/reservations", headers=as_stranger)
    assert api_answer.status_code == 404
