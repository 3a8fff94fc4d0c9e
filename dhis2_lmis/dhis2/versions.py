"""ServerVersion and the Dialect: every difference between the DHIS2 versions, as named facts.

This is the only module that compares version numbers. A session resolves its ``Dialect`` once,
from ``/api/system/info``, and every reader and writer asks it: paths (tracker or legacy
events), envelope keys with their fallbacks, parameter names, ``fields`` strings, ``order``
names, UID-list separators, the paging signal and the event write path with its literal
``async=false`` (WEB_API.md §4, §5, §10). A new version difference is one new fact here.

Supported: 2.36 to 2.43. An older server is refused with :class:`UnsupportedVersionError`; a newer
one is spoken to in the newest dialect, and the session says so once in the log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import total_ordering

import attrs

from dhis2_lmis.errors import ConfigError, ResponseFormatError, UnsupportedVersionError

__all__ = [
    "NEWEST_KNOWN",
    "NEWEST_KNOWN_TEXT",
    "OLDEST_SUPPORTED",
    "OLDEST_SUPPORTED_TEXT",
    "Dialect",
    "ServerVersion",
    "dialect_for",
    "newer_than_known",
    "released_in",
]


OLDEST_SUPPORTED = (2, 36)
"""The oldest DHIS2 release the library reads and writes."""
NEWEST_KNOWN = (2, 43)
"""The newest release whose API differences are known here; newer ones get its dialect."""
OLDEST_SUPPORTED_TEXT = ".".join(map(str, OLDEST_SUPPORTED))
NEWEST_KNOWN_TEXT = ".".join(map(str, NEWEST_KNOWN))
"""The two bounds as messages write them (``"2.36"``, ``"2.43"``)."""

_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@total_ordering
@attrs.frozen(eq=False)
class ServerVersion:
    """A DHIS2 version such as ``2.40.3``, ``2.39.1.1`` or ``2.41-SNAPSHOT``.

    Compares with other versions and with plain tuples: ``version >= (2, 41)``. A ``-SUFFIX`` is
    kept for display but ignored when comparing; a snapshot counts as its ``.0`` release.
    """

    major: int
    minor: int
    patch: int = 0
    hotfix: int = 0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> ServerVersion:
        """Parse the ``version`` of ``/api/system/info``.

        Raises:
            ResponseFormatError: the text does not start with ``<major>.<minor>``.
        """
        match = _VERSION_RE.match(text or "")
        if match is None:
            raise ResponseFormatError(f"unrecognised DHIS2 version {text!r}")
        major, minor, patch, hotfix = match.groups()
        return cls(int(major), int(minor), int(patch or 0), int(hotfix or 0), text.strip())

    @property
    def parts(self) -> tuple[int, int, int, int]:
        """``(major, minor, patch, hotfix)``."""
        return (self.major, self.minor, self.patch, self.hotfix)

    def _key(self, other: object) -> tuple[int, ...] | None:
        if isinstance(other, ServerVersion):
            return other.parts
        if isinstance(other, tuple) and all(isinstance(x, int) for x in other):
            return (*other, *(0,) * (4 - len(other)))
        return None

    def __eq__(self, other: object) -> bool:
        key = self._key(other)
        if key is None:
            return NotImplemented
        return self.parts == key

    def __lt__(self, other: object) -> bool:
        key = self._key(other)
        if key is None:
            return NotImplemented
        return self.parts < key

    def __hash__(self) -> int:
        return hash(self.parts)

    def __str__(self) -> str:
        return self.text or ".".join(str(p) for p in self.parts)


@attrs.frozen
class Dialect:
    """How one server version wants requests phrased and how it answers.

    Attributes:
        version: the server's version.
        legacy_events: events are read and STR events written through the legacy ``/api/events``
            (``tracker_api = "legacy"``, 2.36-2.41); tracked entities always use the tracker API.
        events_path: the events endpoint below ``/api/``.
        events_keys: the list keys a page of events may use, the expected one first (2.41 answers
            ``events`` where 2.36-2.40 said ``instances``).
        event_fields: the ``fields`` of a full event read; empty where the server ignores it.
        event_value_fields: ``fields`` for a balance look-up: uid, dates, status, values.
        org_unit_mode_param: ``ouMode`` or ``orgUnitMode`` on event reads.
        updated_after_param / updated_before_param: the ``updatedAt`` window's names.
        occurred_after_param / occurred_before_param: the occurred-date window's names.
        order_updated: the ``order`` value for "updatedAt ascending".
        order_newest: the ``order`` value for "newest event first" (event date, then creation).
        next_page_link: 2.42+: more pages exactly when ``pager.nextPage`` is present.
        tracked_entity_param: the event filter naming one tracked entity.
        event_list_param: the parameter selecting events by UID (``event`` before 2.41).
        event_list_separator: how it joins UIDs (``;`` before 2.41 and on legacy reads).
        list_separator: how tracked-entity UID lists are joined (``;`` before 2.41, ``,`` after).
        tracked_entities_path: the tracked-entity endpoint below ``/api/``: the tracker API
            whatever ``legacy_events`` (up to 2.41 it takes ``ouMode`` like the legacy reads).
        tracked_entities_key: list key of its pages.
        tracked_entity_list_param: the parameter selecting tracked entities by UID.
        org_units_param: its org unit parameter (``orgUnit`` or ``orgUnits``).
        tracked_entity_fields: ``fields`` of a tracked-entity look-up (attributes, enrollments).
        event_write_path: where events are written (``tracker`` or the legacy ``events``).
        event_write_params: the query of an event write: synchronous, create-or-update.
    """

    version: ServerVersion
    legacy_events: bool
    events_path: str
    events_keys: tuple[str, ...]
    event_fields: str
    event_value_fields: str
    org_unit_mode_param: str
    updated_after_param: str
    updated_before_param: str
    occurred_after_param: str
    occurred_before_param: str
    order_updated: str
    order_newest: str
    next_page_link: bool
    tracked_entity_param: str
    event_list_param: str
    event_list_separator: str
    list_separator: str
    tracked_entities_path: str
    tracked_entities_key: str
    tracked_entity_list_param: str
    org_units_param: str
    tracked_entity_fields: str
    event_write_path: str
    event_write_params: Mapping[str, str]

    def event_uids(self, uids: Sequence[str]) -> tuple[str, str]:
        """The query parameter and value selecting events by UID (``event=a;b`` before 2.41)."""
        return self.event_list_param, self.event_list_separator.join(uids)

    def tracked_entity_uids(self, uids: Sequence[str]) -> tuple[str, str]:
        """The query parameter and value selecting tracked entities by UID."""
        return self.tracked_entity_list_param, self.list_separator.join(uids)

    @staticmethod
    def attribute_in(attribute: str, values: Sequence[str]) -> tuple[str, str]:
        """The ``filter`` selecting tracked entities whose ``attribute`` is one of ``values``."""
        return "filter", f"{attribute}:in:{';'.join(values)}"

    def describe(self) -> str:
        """E.g. ``DHIS2 2.41.0 /api/tracker/events``: where records come from."""
        return f"DHIS2 {self.version} /api/{self.events_path}"


# What the library reads of an event: everything but relationships, which can be large.
_TRACKER_EVENT_FIELDS = (
    "event,status,program,programStage,orgUnit,occurredAt,scheduledAt,createdAt,updatedAt,"
    "completedAt,completedBy,storedBy,attributeOptionCombo,enrollment,trackedEntity,deleted,"
    "dataValues[dataElement,value,providedElsewhere,storedBy,createdAt,updatedAt],"
    "notes[value,storedBy,storedAt]"
)
_TRACKER_VALUE_FIELDS = (
    "event,occurredAt,createdAt,createdAtClient,status,deleted,trackedEntity,"
    "dataValues[dataElement,value]"
)
_LEGACY_VALUE_FIELDS = (
    "event,eventDate,created,status,deleted,trackedEntityInstance,dataValues[dataElement,value]"
)
_TRACKED_ENTITY_FIELDS = (
    "trackedEntity,orgUnit,attributes[attribute,value],"
    "enrollments[enrollment,status,program,orgUnit,deleted]"
)
_TRACKER_WRITE = {
    "async": "false",  # the literal string: 2.36-2.41 route on it (WEB_API.md §5.1)
    "importStrategy": "CREATE_AND_UPDATE",
    "atomicMode": "OBJECT",
    "reportMode": "ERRORS",
}
_LEGACY_WRITE = {"strategy": "CREATE_AND_UPDATE"}


def dialect_for(version: ServerVersion, *, legacy_events: bool = False) -> Dialect:
    """The dialect of ``version``; ``legacy_events`` reads and writes events via ``/api/events``.

    A version newer than :data:`NEWEST_KNOWN` gets the newest dialect (the caller logs it once).

    Raises:
        UnsupportedVersionError: the server is older than :data:`OLDEST_SUPPORTED`.
        ConfigError: legacy events were asked of 2.42+, where ``/api/events`` is gone.
    """
    if version < OLDEST_SUPPORTED:
        raise UnsupportedVersionError(
            f"DHIS2 {version} is older than {OLDEST_SUPPORTED_TEXT}, the oldest version this "
            "library supports"
        )
    legacy_removed = version >= (2, 42)
    if legacy_events and legacy_removed:
        raise ConfigError(
            f'DHIS2 {version} has no legacy /api/events: set tracker_api = "tracker" (or "auto")'
        )
    new_names = version >= (2, 41)
    new_order = version >= (2, 37)  # 2.36 hands ``order`` to the legacy store and its names
    tracker = Dialect(
        version=version,
        legacy_events=False,
        events_path="tracker/events",
        events_keys=("events", "instances") if new_names else ("instances", "events"),
        event_fields=_TRACKER_EVENT_FIELDS if version >= (2, 38) else "",
        event_value_fields=_TRACKER_VALUE_FIELDS,
        org_unit_mode_param="orgUnitMode" if new_names else "ouMode",
        updated_after_param="updatedAfter",
        updated_before_param="updatedBefore",
        occurred_after_param="occurredAfter",
        occurred_before_param="occurredBefore",
        order_updated="updatedAt:asc" if new_order else "lastUpdated:asc",
        order_newest="occurredAt:desc,createdAt:desc"
        if new_order
        else "eventDate:desc,created:desc",
        next_page_link=legacy_removed,
        tracked_entity_param="trackedEntity",
        event_list_param="events" if new_names else "event",
        event_list_separator="," if new_names else ";",
        list_separator="," if new_names else ";",
        tracked_entities_path="tracker/trackedEntities",
        tracked_entities_key="trackedEntities" if new_names else "instances",
        tracked_entity_list_param="trackedEntities" if new_names else "trackedEntity",
        org_units_param="orgUnits" if new_names else "orgUnit",
        tracked_entity_fields=_TRACKED_ENTITY_FIELDS,
        event_write_path="tracker",
        event_write_params=_TRACKER_WRITE,
    )
    if not legacy_events:
        return tracker
    return attrs.evolve(
        tracker,
        legacy_events=True,
        events_path="events",
        events_keys=("events",),
        event_fields="*",  # the legacy default fields omit completedDate, storedBy, ...
        event_value_fields=_LEGACY_VALUE_FIELDS,
        org_unit_mode_param="ouMode",
        updated_after_param="lastUpdatedStartDate",
        updated_before_param="lastUpdatedEndDate",
        occurred_after_param="startDate",
        occurred_before_param="endDate",
        order_updated="lastUpdated:asc",
        order_newest="eventDate:desc,created:desc",
        tracked_entity_param="trackedEntityInstance",
        event_list_param="event",
        event_list_separator=";",
        event_write_path="events",
        event_write_params=_LEGACY_WRITE,
    )


def released_in(version: ServerVersion, firsts: Sequence[tuple[int, int]]) -> bool:
    """Whether a feature first released in ``firsts`` exists in ``version``.

    ``firsts`` holds the first ``(minor, patch)`` of each 2.x release line that has it, oldest
    first; the last entry holds for every later line (a back-port reaches only its own line).
    """
    last_minor = firsts[-1][0]
    return any(
        version >= (2, minor, patch) and minor in (version.minor, last_minor)
        for minor, patch in firsts
    )


def newer_than_known(version: ServerVersion) -> bool:
    """Whether ``version`` is past :data:`NEWEST_KNOWN` (spoken to in the newest dialect)."""
    return version >= (NEWEST_KNOWN[0], NEWEST_KNOWN[1] + 1)
