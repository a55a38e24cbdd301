from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from appointments.errors import problem_responses

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=problem_responses(503))
async def readyz(request: Request) -> Health:
    """The database answers."""
    async with request.app.state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return Health(status="ok")
