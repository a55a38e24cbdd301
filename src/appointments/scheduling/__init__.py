"""The scheduling core: the booking rules every path composes from (`rules`)."""
