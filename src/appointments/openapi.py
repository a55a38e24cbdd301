"""The OpenAPI document, corrected to say what the service really answers.

FastAPI documents request validation failures as `HTTPValidationError` JSON;
this service answers them (and every other error) as problem+json instead.
"""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from appointments.auth.policy import rule_for
from appointments.errors import PROBLEM_MEDIA_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Operations that never touch the database, so never answer 503.
_NO_DATABASE_PATHS = frozenset({"/healthz", "/metrics"})


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation["responses"]
            for status in rule_for(method.upper(), path).statuses:
                responses.setdefault(str(status), {"description": HTTPStatus(status).phrase})
            if path not in _NO_DATABASE_PATHS:
                responses.setdefault(
                    "503", {"description": "Service Unavailable: the database is unreachable"}
                )
            if "requestBody" in operation:
                # A body that is not JSON at all (e.g. invalid UTF-8) is a 400.
                responses.setdefault("400", {"description": "Bad Request"})
                responses.setdefault("413", {"description": "Content Too Large"})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = _problem_content()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
