"""Raw JSON as DHIS2 sends it, and the one codec that reads and writes it.

The codec is msgspec's (``docs/performance.md`` says why): its decoder is about twice as fast
as :func:`json.loads` into plain values, and the event pages decode through it straight into
typed structures (:mod:`dhis2_lmis.dhis2.convert`). It is stricter than :mod:`json` in ways DHIS2
never meets: ``NaN``/``Infinity`` literals and numbers beyond a float's range are refused (a
``ValueError``, as for any malformed body), and bodies are UTF-8.
"""

from __future__ import annotations

from typing import Any, TypeAlias, TypeVar, Union

import msgspec

__all__ = ["JsonObject", "JsonValue", "as_text", "decode", "dumps", "loads"]

# Union keeps the recursive alias valid at run time on Python 3.10.
JsonValue: TypeAlias = Union[  # noqa: UP007
    bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"], None
]
JsonObject: TypeAlias = dict[str, JsonValue]

_T = TypeVar("_T")
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode(decoder: msgspec.json.Decoder[_T], content: bytes) -> _T:
    """Decode a JSON body with ``decoder`` (plain values, or typed structures).

    Raises:
        ValueError: the body is not JSON, or not of the decoder's shape (msgspec's own errors
            subclass ValueError only in its recent releases, so they are re-raised as one).
    """
    try:
        return decoder.decode(content)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc


def loads(content: bytes) -> JsonValue:
    """Decode a JSON body into plain values.

    Raises:
        ValueError: the body is not JSON.
    """
    return decode(_decoder, content)  # type: ignore[no-any-return]  # JSON is JsonValue


def as_text(value: object) -> str | None:
    """A JSON value as the text DHIS2 stores: a number sent unquoted becomes its text (5 ->
    ``"5"``), a boolean ``"true"``/``"false"`` (DHIS2's spelling, not Python's), None stays None.

    The one rule for every field the library reads as text from a body of any version.
    """
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dumps(value: object) -> bytes:
    """Encode plain values (or msgspec structures) as compact UTF-8 JSON: no spaces,
    non-ASCII written as is."""
    return _encoder.encode(value)
