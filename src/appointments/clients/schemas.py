import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from appointments.schemas import EmailAddress, Name, RequestBody, ResponseBody

PhoneNumber = Annotated[
    str,
    Field(pattern=r"^\+[1-9][0-9]{1,14}$", max_length=16, examples=["+4915112345678"]),
]


class ClientIn(RequestBody):
    name: Name
    email: EmailAddress
    phone_number: PhoneNumber | None = Field(default=None, description="E.164, e.g. +4915112345678")


class ClientOut(ResponseBody):
    id: uuid.UUID
    name: str
    email: str
    phone_number: str | None
    created_at: datetime
    updated_at: datetime
