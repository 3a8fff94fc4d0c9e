"""RetryPolicy: which failures are retried, how long to wait, and when to give up.

DHIS2 itself never rate-limits; 429s and 502/503/504 come from reverse proxies and restarts
(WEB_API.md §9). A write is retried after an ambiguous failure (read timeout, 5xx) only when it
is idempotent: a data value upsert or a tracker import with client-made UIDs under
``CREATE_AND_UPDATE``. A connect error is always safe to retry: the request never left.
"""

from __future__ import annotations

import email.utils
import random
from datetime import datetime, timezone
from enum import Enum

import attrs

from dhis2_lmis.dhis2._clock import utc_now

__all__ = ["FailureKind", "RetryPolicy", "parse_retry_after"]


class FailureKind(Enum):
    """What went wrong with one attempt, as far as retrying cares."""

    CONNECT = "connect"  # never reached the server: safe for any method
    READ = "read"  # sent, no (complete) answer: the server may have acted
    STATUS = "status"  # a retryable HTTP status arrived


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or utc_now()
    return max(0.0, (when - current).total_seconds())


@attrs.frozen
class RetryPolicy:
    """Bounded, jittered retries.

    Args:
        attempts: total tries including the first (1 disables retrying).
        base_s: first backoff ceiling; doubles per attempt (full jitter within it).
        cap_s: largest single wait, also the cap applied to a server's ``Retry-After``.
        deadline_s: give up once this much time has passed since the first attempt.
        statuses: HTTP statuses worth another try.
    """

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0
    deadline_s: float = 120.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def should_retry(
        self, kind: FailureKind, *, idempotent: bool, status: int | None = None
    ) -> bool:
        """Whether a failure of this kind may be retried for a call of this idempotency."""
        if kind is FailureKind.CONNECT:
            return True
        if kind is FailureKind.STATUS:
            if status == 429:  # the proxy refused before the application saw it
                return True
            return idempotent and status in self.statuses
        return idempotent

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(self.cap_s, retry_after)
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
