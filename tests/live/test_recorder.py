"""The live suite's recorder scrubs credentials: checked against FakeDhis2, no server needed.

Anyone may record a real server with ``DHIS2_LIVE_RECORD=1`` and commit the cassettes, so the
scrubbing must hold before a single real recording exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dhis2_lmis import Dhis2Config, Dhis2Lmis
from dhis2_lmis.testing import DEMO, FakeDhis2
from tests.live._live import live_settings, make_recorder, strip_set_cookie

PASSWORD = "Rec0rd-me-n0t!"  # a secret that must not reach a cassette
USERNAME = "recorder"


@pytest.fixture
def fake() -> Iterator[FakeDhis2]:
    with FakeDhis2.demo() as server:
        server.add_user(USERNAME, PASSWORD, org_units=(DEMO.country,))
        yield server


def record(fake: FakeDhis2, path: Path, dhis2: dict[str, object]) -> str:
    config = Dhis2Config.from_dict({"dhis2": {"url": fake.url, **dhis2}}, environ={})
    with make_recorder().use_cassette(str(path)), Dhis2Lmis(config) as lmis:
        assert lmis.test_connection().ok
        lmis.session.get_json("me", {"fields": "id", "access_token": PASSWORD})
    return path.read_text(encoding="utf-8")


def test_recording_with_basic_auth_keeps_no_password_or_cookie(
    fake: FakeDhis2, tmp_path: Path
) -> None:
    text = record(
        fake, tmp_path / "basic.yaml", {"auth": "basic", "username": USERNAME, "password": PASSWORD}
    )
    assert "/api/me" in text  # something was recorded
    assert PASSWORD not in text
    assert "Basic " not in text
    assert "JSESSIONID" not in text
    assert "authorization" not in text.lower()
    assert "cookie" not in text.lower()


def test_recording_with_a_token_keeps_no_token(fake: FakeDhis2, tmp_path: Path) -> None:
    token = fake.add_token(USERNAME)
    text = record(fake, tmp_path / "token.yaml", {"auth": "token", "token": token})
    assert "/api/me" in text
    assert token not in text
    assert "ApiToken" not in text


def test_set_cookie_is_stripped_in_any_casing() -> None:
    response = {
        "headers": {
            "Set-Cookie": ["JSESSIONID=abc"],
            "set-cookie": ["SESSION=def"],
            "Content-Type": ["application/json"],
        }
    }
    assert strip_set_cookie(response)["headers"] == {"Content-Type": ["application/json"]}


def test_live_settings_need_a_url_and_credentials() -> None:
    assert live_settings({}) is None
    assert live_settings({"DHIS2_LIVE_URL": "https://play.example"}) is None
    assert live_settings({"DHIS2_LIVE_URL": "https://x", "DHIS2_LIVE_USERNAME": "admin"}) is None
    assert live_settings({"DHIS2_LIVE_TOKEN": "d2pat_x"}) is None


def test_live_settings_read_write_and_record_flags() -> None:
    settings = live_settings(
        {
            "DHIS2_LIVE_URL": "https://play.example/",
            "DHIS2_LIVE_TOKEN": "d2pat_secret",
            "DHIS2_LIVE_WRITE": "1",
            "DHIS2_LIVE_PROGRAM": "eBAyeGv0exc",
        }
    )
    assert settings is not None
    assert settings.url == "https://play.example"
    assert settings.write
    assert not settings.record
    assert settings.program == "eBAyeGv0exc"
    assert settings.config()["auth"] == "token"
    assert "d2pat_secret" not in repr(settings)


def test_live_writes_are_off_unless_asked() -> None:
    settings = live_settings(
        {"DHIS2_LIVE_URL": "https://x", "DHIS2_LIVE_USERNAME": "a", "DHIS2_LIVE_PASSWORD": "b"}
    )
    assert settings is not None
    assert not settings.write
    assert not settings.record
    assert settings.config()["auth"] == "basic"
