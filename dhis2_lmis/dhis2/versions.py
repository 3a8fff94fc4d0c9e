"""ServerVersion and each DHIS2 version's API dialect.

This is the only module that knows which version speaks which dialect: parameter names, paging
switches, envelopes and ordering names of ``/api/tracker/events`` and the legacy ``/api/events``
(WEB_API.md §4, §10). Readers ask the dialect; they never compare version numbers themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import total_ordering

import attrs

from dhis2_lmis.errors import ResponseFormatError

__all__ = ["EventsDialect", "ServerVersion", "events_dialect"]

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
class EventsDialect:
    """How one server version wants event reads phrased and how it answers.

    Attributes:
        path: the events endpoint below ``/api/``.
        legacy: True for the pre-2.36 style ``/api/events`` (legacy names throughout).
        items_key: the list key of a page.
        org_unit_mode_param: ``ouMode`` or ``orgUnitMode``.
        updated_after_param: query name of the ``updatedAt`` lower bound.
        updated_before_param: query name of the upper bound.
        occurred_after_param / occurred_before_param: occurred-date bounds.
        order_updated: the ``order`` value for "updatedAt ascending".
        order_newest: the ``order`` value for "newest event first" (event date, then creation).
        sends_fields: whether ``fields`` is honoured (2.38+, legacy always).
        next_page_link: 2.42+: more pages exactly when ``pager.nextPage`` is present.
        tracked_entities_key: list key of ``/api/tracker/trackedEntities`` pages.
        tracked_entity_param: the event filter naming one tracked entity.
        id_list_separator: how UID lists are joined (``;`` before 2.41, ``,`` after).
        org_units_param: the tracked-entity org-unit parameter (``orgUnit`` or ``orgUnits``).
    """

    path: str
    legacy: bool
    items_key: str
    org_unit_mode_param: str
    updated_after_param: str
    updated_before_param: str
    occurred_after_param: str
    occurred_before_param: str
    order_updated: str
    order_newest: str
    sends_fields: bool
    next_page_link: bool
    tracked_entities_key: str
    org_units_param: str
    id_list_separator: str
    tracked_entity_param: str

    def event_uids(self, uids: Sequence[str]) -> tuple[str, str]:
        """The query parameter and value selecting events by UID (``event=a;b`` before 2.41)."""
        name = "events" if self.id_list_separator == "," else "event"
        return name, self.id_list_separator.join(uids)

    def tracked_entity_uids(self, uids: Sequence[str]) -> tuple[str, str]:
        """The query parameter and value selecting tracked entities by UID."""
        name = "trackedEntities" if self.id_list_separator == "," else self.tracked_entity_param
        return name, self.id_list_separator.join(uids)


def events_dialect(version: ServerVersion, *, legacy: bool = False) -> EventsDialect:
    """The event-reading dialect of ``version``; ``legacy`` selects ``/api/events``.

    Raises:
        ResponseFormatError: legacy reading was asked of 2.42+, where ``/api/events`` is gone.
    """
    if legacy or version < (2, 36):
        if version >= (2, 42):
            raise ResponseFormatError(
                f'DHIS2 {version} has no legacy /api/events; set tracker_api = "tracker"'
            )
        return EventsDialect(
            path="events",
            legacy=True,
            items_key="events",
            org_unit_mode_param="ouMode",
            updated_after_param="lastUpdatedStartDate",
            updated_before_param="lastUpdatedEndDate",
            occurred_after_param="startDate",
            occurred_before_param="endDate",
            order_updated="lastUpdated:asc",
            order_newest="eventDate:desc,created:desc",
            sends_fields=True,
            next_page_link=False,
            tracked_entities_key="trackedEntityInstances",
            org_units_param="ou",
            id_list_separator=";",
            tracked_entity_param="trackedEntityInstance",
        )
    new_names = version >= (2, 41)
    return EventsDialect(
        path="tracker/events",
        legacy=False,
        items_key="events" if new_names else "instances",
        org_unit_mode_param="orgUnitMode" if new_names else "ouMode",
        updated_after_param="updatedAfter",
        updated_before_param="updatedBefore",
        occurred_after_param="occurredAfter",
        occurred_before_param="occurredBefore",
        # 2.36 passes ``order`` to the legacy store, which only knows the legacy names
        order_updated="updatedAt:asc" if version >= (2, 37) else "lastUpdated:asc",
        order_newest=(
            "occurredAt:desc,createdAt:desc"
            if version >= (2, 37)
            else "eventDate:desc,created:desc"
        ),
        sends_fields=version >= (2, 38),
        next_page_link=version >= (2, 42),
        tracked_entities_key="trackedEntities" if new_names else "instances",
        org_units_param="orgUnits" if new_names else "orgUnit",
        id_list_separator="," if new_names else ";",
        tracked_entity_param="trackedEntity",
    )
