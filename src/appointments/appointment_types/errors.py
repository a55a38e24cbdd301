from appointments.scheduling.errors import DailyLimitReached, TooFarAhead

__all__ = ["DailyLimitReached", "TooFarAhead"]
