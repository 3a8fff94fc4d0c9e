"""pytest fixtures for FakeDhis2 (registered through the ``pytest11`` entry point).

Loaded in every pytest run of every user who installs dhis2-lmis, so it imports nothing heavy at
module level, starts servers only inside fixtures and has no autouse fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # pragma: no cover - import for type checkers only
    from dhis2_lmis.testing import FakeDhis2, LocalSmtpServer

__all__ = [
    "dhis2_version",
    "fake_dhis2",
    "fake_dhis2_factory",
    "fake_smtp",
    "pytest_configure",
]

DEFAULT_VERSION = "2.41"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``dhis2_version`` marker."""
    config.addinivalue_line(
        "markers",
        "dhis2_version(version): the DHIS2 version the fake_dhis2 fixture impersonates",
    )


@pytest.fixture
def dhis2_version(request: pytest.FixtureRequest) -> str:
    """The version of ``fake_dhis2``: the ``dhis2_version`` marker, else ``"2.41"``.

    Override it (or parametrize it) to run a test against several versions.
    """
    marker = request.node.get_closest_marker("dhis2_version")
    if marker is not None and marker.args:
        return str(marker.args[0])
    return DEFAULT_VERSION


def _check(fake: FakeDhis2) -> None:
    problems = [f"unanswered: {u}" for u in fake.unanswered] + [f"crash: {e}" for e in fake.errors]
    if fake.strict and problems:
        pytest.fail("FakeDhis2 could not answer some requests:\n  " + "\n  ".join(problems))


@pytest.fixture
def fake_dhis2_factory() -> Iterator[Callable[..., FakeDhis2]]:
    """A callable ``make(version, **options) -> FakeDhis2`` (started); all stop at teardown."""
    from dhis2_lmis.testing import FakeDhis2  # noqa: PLC0415 - keep plugin import cheap

    made: list[FakeDhis2] = []

    def make(version: str = DEFAULT_VERSION, **options: object) -> FakeDhis2:
        fake = FakeDhis2(version, **options)  # type: ignore[arg-type]  # options forwarded verbatim
        fake.start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()
    for fake in made:
        _check(fake)


@pytest.fixture
def fake_dhis2(dhis2_version: str) -> Iterator[FakeDhis2]:
    """A started FakeDhis2 of ``dhis2_version``; fails the test if a request found no route."""
    from dhis2_lmis.testing import FakeDhis2  # noqa: PLC0415 - keep plugin import cheap

    fake = FakeDhis2(dhis2_version)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    _check(fake)


@pytest.fixture
def fake_smtp() -> Iterator[LocalSmtpServer]:
    """A real SMTP server on 127.0.0.1 (``.port``, ``.messages``), for error e-mail tests."""
    from dhis2_lmis.testing import LocalSmtpServer  # noqa: PLC0415 - keep plugin import cheap

    with LocalSmtpServer() as server:
        yield server
