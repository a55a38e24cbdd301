"""The hottest routes answered in front of FastAPI (issue 13): the same answers,
without the framework's per-request work."""
