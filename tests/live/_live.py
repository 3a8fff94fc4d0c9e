"""The live contract suite's settings and cassette recorder.

Nothing here talks to a server: the test module imports :func:`live_settings` for its one
``skipif``, ``conftest.py`` builds the client from the same settings, and
:func:`make_recorder` is the one vcrpy configuration recordings are made with (its scrubbing
is tested against FakeDhis2 in ``test_recorder.py``, which needs no server).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CASSETTES",
    "FILTERED_HEADERS",
    "FILTERED_QUERY_PARAMETERS",
    "SKIP_REASON",
    "LiveSettings",
    "live_settings",
    "make_recorder",
    "strip_set_cookie",
]

CASSETTES = Path(__file__).resolve().parent / "cassettes"

SKIP_REASON = (
    "live DHIS2 contract suite: set DHIS2_LIVE_URL and either DHIS2_LIVE_USERNAME and "
    "DHIS2_LIVE_PASSWORD or DHIS2_LIVE_TOKEN to run it against a real server "
    "(see tests/live/README.md)"
)


@dataclass(frozen=True)
class LiveSettings:
    """Where the live server is and what the suite may do there."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    program: str | None = None
    write: bool = False
    record: bool = False

    def config(self) -> dict[str, object]:
        """The ``[dhis2]`` table of a configuration for this server."""
        if self.token:
            return {"url": self.url, "auth": "token", "token": self.token}
        return {
            "url": self.url,
            "auth": "basic",
            "username": self.username,
            "password": self.password,
        }


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def live_settings(environ: Mapping[str, str] | None = None) -> LiveSettings | None:
    """The settings, or None when the URL or the credentials are missing."""
    env = os.environ if environ is None else environ
    url = env.get("DHIS2_LIVE_URL", "").strip().rstrip("/")
    username = env.get("DHIS2_LIVE_USERNAME") or None
    password = env.get("DHIS2_LIVE_PASSWORD") or None
    token = env.get("DHIS2_LIVE_TOKEN") or None
    if not url or not (token or (username and password)):
        return None
    return LiveSettings(
        url=url,
        username=username,
        password=password,
        token=token,
        program=env.get("DHIS2_LIVE_PROGRAM") or None,
        write=_flag(env.get("DHIS2_LIVE_WRITE")),
        record=_flag(env.get("DHIS2_LIVE_RECORD")),
    )


#: Request headers never written to a cassette (vcrpy compares them case-insensitively).
FILTERED_HEADERS = ("authorization", "cookie", "set-cookie")
#: Query parameters that could carry a credential on a misconfigured proxy or login flow.
FILTERED_QUERY_PARAMETERS = ("token", "access_token", "api_token", "apiToken", "password")


def strip_set_cookie(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response`` hook: drop every Set-Cookie header (session ids)."""
    headers = response.get("headers") or {}
    for name in [n for n in headers if n.lower() == "set-cookie"]:
        del headers[name]
    return response


def make_recorder(record_mode: str = "all") -> Any:
    """A vcrpy VCR that records every request anew, with credentials scrubbed.

    vcrpy is imported here, not at module level, so the suite loads without it.
    """
    import vcr  # noqa: PLC0415 - only needed when recording

    return vcr.VCR(
        record_mode=record_mode,
        filter_headers=list(FILTERED_HEADERS),
        filter_query_parameters=list(FILTERED_QUERY_PARAMETERS),
        before_record_response=strip_set_cookie,
        decode_compressed_response=True,
    )
