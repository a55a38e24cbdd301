"""Query-string times: ISO 8601 with an offset, as in bodies."""

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from appointments.schemas import UtcTime

# An unencoded "+01:00" in a query string arrives as " 01:00"; put the plus back.
_LOST_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _restore_plus(value: Any) -> Any:
    if isinstance(value, str):
        return _LOST_PLUS.sub(r"\1+\2", value)
    return value


AwareQueryTime = Annotated[UtcTime, BeforeValidator(_restore_plus)]
