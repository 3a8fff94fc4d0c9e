"""Parse the version string a FakeDhis2 impersonates.

The fake branches on the minor version (36..43) and, for a few patch-introduced features
(``/api/ping``, ``rejectedIndexes``, unchanged values counted as ignored), on the patch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FakeVersion", "parse_version"]

_VERSION_RE = re.compile(r"^2\.(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_MIN_MINOR = 36
_MAX_MINOR = 43


@dataclass(frozen=True, order=True)
class FakeVersion:
    """A DHIS2 ``2.<minor>.<patch>`` version; ordered by (minor, patch)."""

    minor: int
    patch: int = 0
    text: str = field(default="", compare=False)

    def at_least(self, minor: int, patch: int = 0) -> bool:
        """True when this version is ``2.minor.patch`` or newer."""
        return (self.minor, self.patch) >= (minor, patch)

    @property
    def full(self) -> str:
        """The string ``/api/system/info`` reports, e.g. ``2.41.0``."""
        return self.text if self.text.count(".") >= 2 else f"2.{self.minor}.{self.patch}"


def parse_version(text: str) -> FakeVersion:
    """Parse ``"2.41"`` or ``"2.40.3"`` (suffixes such as ``-SNAPSHOT`` are ignored).

    Raises:
        ValueError: the text is not a DHIS2 version between 2.36 and 2.43.
    """
    match = _VERSION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a DHIS2 version: {text!r} (expected e.g. '2.41' or '2.40.3')")
    minor = int(match.group(1))
    if not _MIN_MINOR <= minor <= _MAX_MINOR:
        raise ValueError(f"FakeDhis2 speaks DHIS2 2.{_MIN_MINOR}..2.{_MAX_MINOR}, not {text!r}")
    patch = int(match.group(2) or 0)
    return FakeVersion(minor=minor, patch=patch, text=text.strip())
