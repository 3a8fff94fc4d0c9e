"""Helpers for the FakeDhis2 tests: plain ``requests`` sessions, never the library's session."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from dhis2_lmis.testing import FakeDhis2

Client = Callable[..., requests.Session]


@pytest.fixture
def client() -> Iterator[Client]:
    """``client(fake, auth=("admin", "district"), ajax=True)`` -> a closed-at-teardown Session."""
    sessions: list[requests.Session] = []

    def make(
        fake: FakeDhis2, auth: tuple[str, str] | None = ("admin", "district"), ajax: bool = True
    ) -> requests.Session:
        s = requests.Session()
        s.auth = auth
        if ajax:
            s.headers["X-Requested-With"] = "XMLHttpRequest"
        sessions.append(s)
        return s

    yield make
    for s in sessions:
        s.close()
