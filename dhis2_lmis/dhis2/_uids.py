"""The shape of a DHIS2 UID (11 characters, a letter first), and the two id schemes.

DHIS2 generates them with ``CodeGenerator`` (``^[a-zA-Z][a-zA-Z0-9]{10}$``); the library checks
configured program UIDs with it and tells UIDs from codes where a server may answer in either.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["UID_RE", "IdScheme", "is_uid"]

UID_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{10}")

IdScheme = Literal["CODE", "UID"]
"""How a DHIS2 object is named in a request or an answer: by its code or by its UID."""


def is_uid(text: str) -> bool:
    """Whether ``text`` has the shape of a DHIS2 UID (a code may have it too)."""
    return UID_RE.fullmatch(text) is not None
