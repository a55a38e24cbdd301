from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy import text

from appointments.observability.metrics import render

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health)
async def readyz(request: Request) -> Health:
    """The database answers."""
    async with request.app.state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return Health(status="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (all workers with PROMETHEUS_MULTIPROC_DIR)."""
    body, content_type = render(request.app.state.engine)
    return Response(body, media_type=content_type)
