"""The one wall clock: ``utc_now()``, the default of every injectable ``now``.

Everything that stamps a time (the stock pusher, the sync runner, the state store, the error
mail, the connection check, ``Retry-After`` dates) takes a ``now`` callable defaulting to this,
so tests and callers fix time in one way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]
"""A source of the current time: returns a timezone-aware datetime."""


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)
