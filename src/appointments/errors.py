"""Typed domain errors and the single place that renders every error as RFC 9457 problem+json."""

import logging
import socket
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from appointments.routes import every_route

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable machine-readable `code`."""

    type: str = Field(examples=["https://appointments.dev/problems/slot_unavailable"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["The slot is already held or confirmed."])
    code: str = Field(examples=["slot_unavailable"])
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field-level details of a validation error."
    )


class BodyTooLarge(Exception):
    """Raised while reading a streamed body that grows past the size limit."""


class DomainError(Exception):
    """A broken business rule; subclasses fix the HTTP status and the stable code."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        # Further members of the problem body, e.g. the conflicts behind a 409.
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        return problem_body(self.status, self.code, self.detail) | self.extra


class NotFound(DomainError):
    status = 404
    code = "not_found"


class ValidationFailed(DomainError):
    """A request that parsed but breaks a rule about its own values (422)."""

    status = 422
    code = "validation_error"


class Conflict(DomainError):
    status = 409
    code = "conflict"


def problem_body(
    status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://appointments.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, errors),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry declaring that a route can answer these statuses with a problem."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Keep location, message and type; drop `input` and `ctx`, which may echo
    # large or sensitive request content back.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


async def _on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    response = JSONResponse(
        jsonable_encoder(exc.problem()), status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE
    )
    response.headers.update(getattr(exc, "headers", None) or {})
    return response


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(_validation_errors(exc))
    summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem_response(422, "validation_error", summary or "Invalid request.", errors)


def _allowed_methods(request: Request) -> str:
    """Every method any route offers on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in every_route(request.app):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    methods.discard("HEAD")
    return ", ".join(sorted(methods))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = str(exc.detail)
    if exc.status_code == 400:
        # FastAPI turns any failure to read the body into a 400; say which one it was.
        if isinstance(exc.__cause__, BodyTooLarge):
            return problem_response(413, "payload_too_large", "the request body is too large")
        detail = "The request body could not be read as JSON."
    response = problem_response(exc.status_code, code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


# SQLSTATE classes and codes that mean "try again": connection exceptions (08),
# serialization failure, deadlock, a server shutting down or starting up, and a
# statement or lock wait that ran past its timeout (query_canceled, lock_not_available).
_TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03", "57014", "55P03")


def is_transient_database_error(exc: BaseException) -> bool:
    """True when the database was unreachable or asked us to retry; not a bug of ours."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror | PoolTimeout):
        return True  # PoolTimeout: no pooled connection came free in time
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        # A multi-host URL with target_session_attrs=read-write during a failover: the
        # hosts answer, none is the primary yet.
        return True
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        # Raised unwrapped while connecting, e.g. "the database system is starting up".
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return isinstance(exc, asyncpg.InterfaceError) or sqlstate.startswith(_TRANSIENT_SQLSTATES)
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", ""))
        return sqlstate.startswith(_TRANSIENT_SQLSTATES) if sqlstate else False
    return False


def lost_to_a_deletion(exc: BaseException) -> bool:
    """True when a write found a row it depends on deleted by a concurrent transaction:
    an ORM UPDATE or DELETE that matched no row, or a foreign key whose row is gone.

    Every path we know of locks what it depends on (`db.RowLock`) and answers such a race
    with the 404 of a request sent after the deletion (tests/test_deleted_meanwhile.py);
    this keeps one we missed from answering 500. A retry gets the real answer.
    """
    if isinstance(exc, StaleDataError | asyncpg.ForeignKeyViolationError):
        return True
    if isinstance(exc, DBAPIError):
        return isinstance(exc.orig, asyncpg.ForeignKeyViolationError) or (
            str(getattr(exc.orig, "sqlstate", "") or "") == "23503"
        )
    return False


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if lost_to_a_deletion(exc):
        # Logged as an error: the path that got here should lock what it depends on.
        logger.error("a write lost a race with a deletion", exc_info=exc)
    elif not is_transient_database_error(exc):
        return await _on_unexpected_error(request, exc)
    else:
        logger.warning("database unavailable: %s: %s", type(exc).__name__, str(exc)[:300])
    response = problem_response(
        503, "database_unavailable", "The database is unreachable or busy; retry shortly."
    )
    response.headers["Retry-After"] = "1"
    return response


async def _on_unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for database_error in (
        DBAPIError,
        ConnectionError,
        TimeoutError,
        PoolTimeout,
        socket.gaierror,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.TargetServerAttributeNotMatched,
        StaleDataError,
    ):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
