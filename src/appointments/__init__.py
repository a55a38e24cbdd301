"""Appointment booking back end."""

__version__ = "0.1.0"
