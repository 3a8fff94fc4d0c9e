"""The shape of a DHIS2 UID: 11 characters, a letter first, then letters and digits.

DHIS2 generates them with ``CodeGenerator`` (``^[a-zA-Z][a-zA-Z0-9]{10}$``); the library checks
configured program UIDs with it and tells UIDs from codes where a server may answer in either.
"""

from __future__ import annotations

import re

__all__ = ["UID_RE", "is_uid"]

UID_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{10}")


def is_uid(text: str) -> bool:
    """Whether ``text`` has the shape of a DHIS2 UID (a code may have it too)."""
    return UID_RE.fullmatch(text) is not None
