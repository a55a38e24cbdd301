import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class IdempotencyKey(Base):
    """The stored answer to a request sent with an `Idempotency-Key`.

    Scoped to the acting client (or provider) and the operation, so two callers'
    keys never collide; a row whose answer is still NULL belongs to a request in
    flight (its transaction holds the row until it commits the answer).
    """

    __tablename__ = "idempotency_keys"

    scope_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    operation: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)
