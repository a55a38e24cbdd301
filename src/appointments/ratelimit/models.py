from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class RateWindow(Base):
    """How often one caller (`scope`: an action and an address) acted in one window.

    In the database, not in a process: every replica behind the load balancer counts
    into the same row, so the limit holds however many processes serve the pages.
    """

    __tablename__ = "rate_windows"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rate_windows_window_start", "window_start"),)
