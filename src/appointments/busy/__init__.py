"""Busy time from the provider's other calendars (issue 25)."""
