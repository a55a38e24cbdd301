"""Counting requests per caller in fixed windows, in the database every process shares."""
