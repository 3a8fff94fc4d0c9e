"""Fixtures of the live contract suite: a client for the server named by ``DHIS2_LIVE_*``.

With ``DHIS2_LIVE_RECORD=1`` every test runs inside a vcrpy cassette written to
``tests/live/cassettes/<server version>/<test name>.yaml``, scrubbed before it is written
(:func:`tests.live._live.make_recorder`): ``Authorization``, ``Cookie`` and ``Set-Cookie``
headers are dropped, token-like query parameters are removed, and Set-Cookie is stripped from
responses in any casing. vcrpy is imported only when recording.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dhis2_lmis import Dhis2Config, Dhis2Lmis
from tests.live._live import CASSETTES, LiveSettings, live_settings, make_recorder


@pytest.fixture(scope="session")
def live() -> LiveSettings:
    """The live server's settings (the test module is skipped when they are incomplete)."""
    settings = live_settings()
    assert settings is not None, "DHIS2_LIVE_URL and credentials are required"
    return settings


@pytest.fixture(scope="session")
def live_config(live: LiveSettings) -> Dhis2Config:
    """A configuration for the live server that reads nothing else from the environment."""
    return Dhis2Config.from_dict({"dhis2": live.config()}, environ={})


@pytest.fixture(scope="session")
def live_version(live_config: Dhis2Config) -> str:
    """The server's version (``2.40.3``): names the cassette directory."""
    with Dhis2Lmis(live_config) as client:
        return str(client.session.version)


@pytest.fixture
def cassette(
    request: pytest.FixtureRequest, live: LiveSettings, live_version: str
) -> Iterator[None]:
    """Record this test's HTTP traffic when ``DHIS2_LIVE_RECORD=1``; otherwise do nothing."""
    if not live.record:
        yield
        return
    path = CASSETTES / live_version / f"{request.node.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with make_recorder().use_cassette(str(path)):
        yield


@pytest.fixture
def lmis(cassette: None, live_config: Dhis2Config) -> Iterator[Dhis2Lmis]:
    """A fresh client per test, created inside the cassette so system/info is recorded too."""
    with Dhis2Lmis(live_config) as client:
        yield client
