"""The provider's appointment types on its page: create, edit, delete. Through the same
service and validation as the API; a refusal is shown in the service's own words."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from appointments.appointment_types import service as appointment_types
from appointments.appointment_types.schemas import AppointmentTypeIn
from appointments.auth.tokens import Role
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.web.pages import (
    ProviderPosterDep,
    attempt,
    first_error,
    redirect,
    signed_in,
)
from appointments.web.provider_pages import form_refused

router = APIRouter(include_in_schema=False)

TYPES_PATH = "/providers/{provider_id}/appointment-types"
NumberField = Annotated[str, Form(max_length=10)]


@dataclass(frozen=True)
class TypeForm:
    """The type form's fields, as text, the way a browser posts them."""

    name: str
    duration_minutes: str
    buffer_before_minutes: str
    buffer_after_minutes: str
    max_per_day: str
    change_notice_minutes: str
    max_advance_days: str
    capacity: str = ""

    def terms(self) -> AppointmentTypeIn:
        """The API's body: empty optional numbers are null (or 0), digits are numbers."""

        def number(text: str) -> int | str | None:
            text = text.strip()
            if not text:
                return None
            # isascii: "²" and other digits of other scripts pass isdigit() but not int().
            return int(text) if text.isascii() and text.isdigit() else text

        return AppointmentTypeIn.model_validate(
            {
                "name": self.name,
                "duration_minutes": number(self.duration_minutes),
                "buffer_before_minutes": number(self.buffer_before_minutes) or 0,
                "buffer_after_minutes": number(self.buffer_after_minutes) or 0,
                "max_per_day": number(self.max_per_day),
                "change_notice_minutes": number(self.change_notice_minutes) or 0,
                "max_advance_days": number(self.max_advance_days),
                "capacity": number(self.capacity) or 1,
            }
        )


async def type_form(
    name: Annotated[str, Form(max_length=200)],
    duration_minutes: NumberField,
    buffer_before_minutes: NumberField = "",
    buffer_after_minutes: NumberField = "",
    max_per_day: NumberField = "",
    change_notice_minutes: NumberField = "",
    max_advance_days: NumberField = "",
    capacity: NumberField = "",
) -> TypeForm:
    return TypeForm(
        name,
        duration_minutes,
        buffer_before_minutes,
        buffer_after_minutes,
        max_per_day,
        change_notice_minutes,
        max_advance_days,
        capacity,
    )


TypeFormDep = Annotated[TypeForm, Depends(type_form)]


async def _save(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    type_id: str | None,
    form: TypeForm,
) -> Response:
    method = "POST" if type_id is None else "PUT"
    path = TYPES_PATH if type_id is None else TYPES_PATH + "/{type_id}"
    principal = signed_in(visitor, Role.PROVIDER, method, path)
    try:
        terms = form.terms()
    except ValidationError as exc:
        message = f"Nothing was saved: {first_error(exc)}."
        return await form_refused(request, visitor, session, clock, message)
    now = clock.now()
    outcome = await attempt(
        session,
        lambda: (
            appointment_types.create_type(session, settings, principal.subject, terms, now)
            if type_id is None
            else appointment_types.replace_type(
                session, settings, principal.subject, type_id, terms, now
            )
        ),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was saved: {outcome.detail}."
    else:
        visitor.session.flash = f"Saved “{outcome.name}” ({outcome.duration_minutes} min)."
    return redirect(request, visitor, "/provider")


@router.post("/provider/types")
async def create(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    form: TypeFormDep,
) -> Response:
    return await _save(request, visitor, session, settings, clock, None, form)


@router.post("/provider/types/{type_id}")
async def update(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    type_id: str,
    form: TypeFormDep,
) -> Response:
    return await _save(request, visitor, session, settings, clock, type_id, form)


@router.post("/provider/types/{type_id}/delete")
async def delete(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    type_id: str,
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "DELETE", TYPES_PATH + "/{type_id}")
    outcome = await attempt(
        session,
        lambda: appointment_types.delete_type(session, principal.subject, type_id, clock.now()),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was deleted: {outcome.detail}."
    else:
        visitor.session.flash = "The appointment type is deleted; booked appointments stay."
    return redirect(request, visitor, "/provider")
