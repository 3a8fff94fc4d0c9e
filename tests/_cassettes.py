"""Replaying the vcrpy cassettes of recorded DHIS2 answers (tests/cassettes/README.md).

``replay(name)`` plays one cassette with record mode ``none``: a request the cassette does not
hold raises vcrpy's ``CannotOverwriteExistingCassetteException`` instead of reaching a server,
and every socket connection is refused while it runs, so nothing escapes vcrpy either.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import vcr
import yaml
from vcr.cassette import Cassette

__all__ = [
    "CASSETTES",
    "base_url",
    "cassette_names",
    "dhis2_query",
    "make_vcr",
    "recorded_bodies",
    "replay",
]

CASSETTES = Path(__file__).resolve().parent / "cassettes"
FILTERED_HEADERS = ("authorization", "cookie")
MATCH_ON = ("method", "scheme", "host", "port", "path", "dhis2_query")


def _query(uri: str) -> tuple[list[tuple[str, str]], str | None]:
    pairs = parse_qsl(urlsplit(uri).query, keep_blank_values=True)
    fields = [value.replace(" ", "") for key, value in pairs if key == "fields"]
    others = [(key, value) for key, value in pairs if key != "fields"]
    if not any(key == "page" for key, _ in others):
        others.append(("page", "1"))
    return sorted(others), ",".join(fields) if fields else None


def dhis2_query(r1: Any, r2: Any) -> None:
    """vcrpy matcher: equal query strings, with no ``page`` meaning page 1, and ``fields``
    compared only when both requests name it.

    ``page`` defaults to 1 on every DHIS2 version, and the recorders asked for page 1 without
    it. A reconstructed request (SOURCE.md says which) leaves ``fields`` out, because its body
    was not produced by the library's projection; recorded requests keep it, because there
    ``fields`` picks the answer (``/api/me?fields=id`` versus ``?fields=name,...``). Every
    other parameter (paging, order, org-unit mode, their per-version names) must match.
    """
    (left, left_fields), (right, right_fields) = _query(r1.uri), _query(r2.uri)
    if left != right:
        raise AssertionError(f"query {left} != {right}")
    if left_fields is not None and right_fields is not None and left_fields != right_fields:
        raise AssertionError(f"fields {left_fields!r} != {right_fields!r}")


def make_vcr() -> vcr.VCR:
    """A VCR that only replays, never records, and would scrub credentials if it did."""
    recorder = vcr.VCR(
        record_mode="none",
        match_on=MATCH_ON,
        filter_headers=FILTERED_HEADERS,
    )
    recorder.register_matcher("dhis2_query", dhis2_query)
    return recorder


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("network blocked: the cassette tests may only talk to vcrpy")


@contextlib.contextmanager
def replay(name: str) -> Iterator[Cassette]:
    """Play ``tests/cassettes/<name>`` with every real connection refused."""
    path = CASSETTES / name
    if not path.is_file():
        raise FileNotFoundError(path)
    with (
        mock.patch.object(socket.socket, "connect", _refuse),
        mock.patch.object(socket.socket, "connect_ex", _refuse),
        make_vcr().use_cassette(str(path), allow_playback_repeats=False) as cassette,
    ):
        yield cassette


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))
    return doc


def base_url(name: str) -> str:
    """The DHIS2 base URL (with context path) the cassette's first request was sent to."""
    uri: str = _load(name)["interactions"][0]["request"]["uri"]
    return uri[: uri.index("/api/")]


def recorded_bodies(name: str) -> list[tuple[str, bytes]]:
    """``(uri, body bytes)`` of every interaction, as vcrpy will play them."""
    return [
        (i["request"]["uri"], i["response"]["body"]["string"].encode("utf-8"))
        for i in _load(name)["interactions"]
    ]


def cassette_names(directory: str) -> list[str]:
    """``directory/<file>.yaml`` names of one cassette directory, sorted."""
    return sorted(f"{directory}/{p.name}" for p in (CASSETTES / directory).glob("*.yaml"))
