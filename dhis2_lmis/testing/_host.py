"""What the fake's parts need of it: the world, the version, the clock, a few settings.

The request handlers (``_auth``, ``_metadata``, ``_tracker_*``, ``_aggregate``) and the demo
seeding are called with the ``FakeDhis2`` itself, but they are typed against these protocols, so
they never import ``_fake`` and ``_fake`` (which imports all of them) sits on top with no circle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from dhis2_lmis.testing._version import FakeVersion
from dhis2_lmis.testing._world import World

__all__ = ["Host", "Seeding"]


class Host(Protocol):
    """The fake as a request handler sees it."""

    world: World
    server_version: FakeVersion
    lockout: bool
    pat_enabled: bool
    unanswered: list[str]
    system_id: str

    @property
    def version(self) -> str:
        """The version string the fake reports."""

    @property
    def time_zone(self) -> str:
        """``serverTimeZoneId``."""

    @property
    def tz(self) -> ZoneInfo:
        """The server time zone."""

    @property
    def now(self) -> dt.datetime:
        """The fake clock (naive, server-local)."""

    def tick(self) -> dt.datetime:
        """The timestamp for a write; the clock moves on 1 ms."""

    def rendered(self, key: tuple[object, ...], render: Callable[[], bytes]) -> bytes:
        """The JSON of one object for one request shape, rendered once while nothing changes."""


class Seeding(Host, Protocol):
    """The fake as ``seed_demo`` sees it: the seeding methods, with the options the demo uses."""

    def add_org_unit(
        self, uid: str, code: str | None, name: str, *, parent: str | None = ...
    ) -> object:
        """Add an organisation unit."""

    def add_data_element(
        self,
        uid: str,
        code: str | None,
        name: str,
        *,
        value_type: str = ...,
        zero_is_significant: bool = ...,
        domain_type: str = ...,
    ) -> object:
        """Add a data element."""

    def add_data_set(
        self,
        uid: str,
        code: str | None,
        name: str,
        *,
        period_type: str = ...,
        data_elements: Sequence[str] = ...,
        org_units: Sequence[str] = ...,
    ) -> object:
        """Add a data set."""

    def add_tracked_entity_attribute(self, uid: str, code: str | None, name: str) -> object:
        """Add a tracked entity attribute."""

    def add_program(
        self,
        uid: str,
        name: str,
        *,
        code: str | None = ...,
        program_type: Literal["WITHOUT_REGISTRATION", "WITH_REGISTRATION"] = ...,
        stages: Mapping[str, Sequence[str]] | None = ...,
        stage_names: Mapping[str, str] | None = ...,
        attributes: Sequence[str] = ...,
        org_units: Sequence[str] = ...,
    ) -> object:
        """Add a program with its stages."""

    def add_tracked_entity(
        self,
        uid: str,
        org_unit: str,
        program: str | None = ...,
        *,
        attributes: Mapping[str, str] | None = ...,
        enrollment_uid: str | None = ...,
        enrolled_at: dt.datetime | None = ...,
    ) -> object:
        """Add a tracked entity, enrolled in ``program``."""

    def add_data_value(
        self, data_element: str, period: str, org_unit: str, value: str | int | float
    ) -> object:
        """Store an aggregate data value."""

    def add_event(
        self,
        uid: str | None,
        program: str,
        org_unit: str,
        *,
        status: str = ...,
        data_values: Mapping[str, str | int | float] | None = ...,
        occurred_at: dt.datetime | None = ...,
        updated_at: dt.datetime | None = ...,
        tracked_entity: str | None = ...,
    ) -> object:
        """Add an event."""
