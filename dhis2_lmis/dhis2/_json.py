"""The type of raw JSON as DHIS2 sends it; narrowed to records inside the converters."""

from __future__ import annotations

from typing import TypeAlias, Union

__all__ = ["JsonObject", "JsonValue"]

# Union keeps the recursive alias valid at run time on Python 3.10.
JsonValue: TypeAlias = Union[  # noqa: UP007
    bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"], None
]
JsonObject: TypeAlias = dict[str, JsonValue]
