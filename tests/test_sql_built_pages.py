"""The pages PostgreSQL (or SQLite) writes as JSON text match the routes' response
models exactly: every field present, none extra, every value valid (a renamed or
mistyped field in the SQL fails here), on both databases, with and without the fast
paths."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from appointments.auth.tokens import Role
from appointments.fast_paths import routes
from appointments.routes import api_routes
from tests.api import Api, bearer
from tests.conftest import START

DAY = START + timedelta(days=3)


def _exactly(model: type[BaseModel], value: Any, where: str) -> None:
    """`value` has exactly the model's fields, recursively through nested models."""
    assert isinstance(value, dict), where
    assert set(value) == set(model.model_fields), (where, set(value) ^ set(model.model_fields))
    for name, field in model.model_fields.items():
        inner = field.annotation
        args = getattr(inner, "__args__", ())
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            _exactly(inner, value[name], f"{where}.{name}")
        elif args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            for index, item in enumerate(value[name]):
                _exactly(args[0], item, f"{where}.{name}[{index}]")


@pytest.mark.parametrize("fast", [True, False])
def test_sql_built_pages_match_their_response_models(api: Api, fast: bool) -> None:
    api.configure(fast_paths=fast)
    provider = api.provider()
    api.publish(provider["id"], DAY, DAY + timedelta(hours=2))
    kind = api.appointment_type(provider["id"])
    bob = api.customer()
    held = api.reserve(bob["id"], api.slot_at(provider["id"], DAY)).json()
    api.confirm(bob["id"], held["id"])
    api.reserve(bob["id"], api.slot_at(provider["id"], DAY + timedelta(hours=1)))
    routed = {
        (context.path_format, method): context.original_route
        for context in api_routes(api.client.app)  # type: ignore[arg-type]
        for method in context.methods or ()
    }
    as_provider = bearer(Role.PROVIDER, provider["id"])
    checked = 0
    for hot in routes.HOT:
        if hot.method != "GET":
            continue
        route = routed[(hot.template, "GET")]
        assert isinstance(route, APIRoute)
        path = hot.template.format(provider_id=provider["id"], type_id=kind["id"])
        for query in ({}, {"status": "all"}, {"status": "reserved"}, {"limit": "2"}):
            if not set(query) <= hot.reads.query:
                continue
            answer = api.client.get(path, params=query, headers=as_provider)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["items"], (path, query)
            TypeAdapter(route.response_model).validate_python(body, strict=False)
            _exactly(route.response_model, body, f"{path} {query}")
            checked += 1
    assert checked == 6  # four listings, two pages of start times
