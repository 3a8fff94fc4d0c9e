"""The in-memory state of a FakeDhis2: metadata, tracker data, aggregate data, users.

Every record is a small mutable dataclass owned by one ``World``; all reads and writes from the
HTTP threads and the seeding methods happen under ``World.lock`` (one re-entrant lock, because the
fake favours obvious correctness over concurrency). Timestamps are naive datetimes in the fake's
server time zone, exactly as DHIS2 serialises them (no offset).
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import threading
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_CATEGORY_COMBO",
    "DEFAULT_CATEGORY_OPTION",
    "DEFAULT_COC",
    "AccessToken",
    "AggregateValue",
    "CategoryCombo",
    "CategoryOptionCombo",
    "DataElement",
    "DataInputPeriod",
    "DataSet",
    "Enrollment",
    "Event",
    "Job",
    "OAuthClient",
    "OptionSet",
    "OrgUnit",
    "Program",
    "ProgramStage",
    "TrackedEntity",
    "TrackedEntityAttribute",
    "User",
    "World",
    "new_uid",
]

DEFAULT_COC = "HllvX50cXC0"
DEFAULT_CATEGORY_COMBO = "bjDvmb4bfuf"
DEFAULT_CATEGORY_OPTION = "xYerKDKCefk"

_UID_FIRST = string.ascii_letters
_UID_REST = string.ascii_letters + string.digits


def new_uid() -> str:
    """A DHIS2-shaped UID: a letter then 10 letters or digits."""
    return secrets.choice(_UID_FIRST) + "".join(secrets.choice(_UID_REST) for _ in range(10))


@dataclass
class OrgUnit:
    """An organisation unit; ``path`` and ``level`` are derived from the parent."""

    uid: str
    code: str | None
    name: str
    parent: str | None
    path: str
    level: int
    children: list[str] = field(default_factory=list)


@dataclass
class CategoryCombo:
    """A category combo and the option combos it generates."""

    uid: str
    code: str | None
    name: str
    option_combos: list[str] = field(default_factory=list)


@dataclass
class CategoryOptionCombo:
    """A category option combo (the default one is ``HllvX50cXC0``)."""

    uid: str
    code: str | None
    name: str
    category_combo: str


@dataclass
class OptionSet:
    """An option set: the codes a value of its data elements must be one of."""

    uid: str
    code: str | None
    name: str
    value_type: str
    options: tuple[str, ...]


@dataclass
class DataElement:
    """A data element; ``value_type`` and ``option_set`` drive value validation."""

    uid: str
    code: str | None
    name: str
    value_type: str = "INTEGER"
    zero_is_significant: bool = False
    category_combo: str = DEFAULT_CATEGORY_COMBO
    domain_type: str = "AGGREGATE"
    option_set: str | None = None


@dataclass(frozen=True)
class DataInputPeriod:
    """A window in which values of ``period`` may be entered (None: open on that side)."""

    period: str
    opening: dt.datetime | None = None
    closing: dt.datetime | None = None


@dataclass
class DataSet:
    """An aggregate data set with its data elements, assigned org units and entry windows.

    ``expiry_days`` 0 never closes a period; ``open_future_periods`` counts the periods after
    the current one open for entry; ``input_periods``, when any, are the only open windows.
    """

    uid: str
    code: str | None
    name: str
    period_type: str
    data_elements: tuple[str, ...]
    org_units: tuple[str, ...]
    category_combo: str = DEFAULT_CATEGORY_COMBO
    expiry_days: int = 0
    open_future_periods: int = 0
    input_periods: tuple[DataInputPeriod, ...] = ()


@dataclass
class ProgramStage:
    """A program stage and its data elements."""

    uid: str
    code: str | None
    name: str
    program: str
    data_elements: tuple[str, ...]


@dataclass
class Program:
    """An event (WITHOUT_REGISTRATION) or tracker (WITH_REGISTRATION) program."""

    uid: str
    code: str | None
    name: str
    program_type: str
    stages: tuple[str, ...]
    attributes: tuple[str, ...]
    org_units: tuple[str, ...]
    category_combo: str = DEFAULT_CATEGORY_COMBO


@dataclass
class TrackedEntityAttribute:
    """A tracked entity attribute (e.g. the item code of an STR stock card)."""

    uid: str
    code: str | None
    name: str
    value_type: str = "TEXT"


@dataclass
class Enrollment:
    """An enrollment of a tracked entity in a tracker program."""

    uid: str
    program: str
    org_unit: str
    tracked_entity: str
    status: str
    enrolled_at: dt.datetime
    occurred_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted: bool = False


@dataclass
class TrackedEntity:
    """A tracked entity with attribute values and enrollments."""

    uid: str
    org_unit: str
    tracked_entity_type: str
    attributes: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime
    enrollments: list[str] = field(default_factory=list)
    deleted: bool = False


@dataclass
class Event:
    """A program event; ``data_values`` maps data element UID to the string value.

    ``seq`` is the internal database id: DHIS2's default order is newest (highest id) first and
    ties in any ordering are broken by it.
    """

    uid: str
    program: str
    program_stage: str
    org_unit: str
    status: str
    occurred_at: dt.datetime | None
    scheduled_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    data_values: dict[str, str]
    seq: int
    tracked_entity: str | None = None
    enrollment: str | None = None
    deleted: bool = False
    stored_by: str = "admin"
    completed_by: str | None = None
    attribute_option_combo: str = DEFAULT_COC
    follow_up: bool = False
    value_times: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)


@dataclass
class AggregateValue:
    """One stored aggregate data value."""

    data_element: str
    period: str
    org_unit: str
    category_option_combo: str
    attribute_option_combo: str
    value: str
    stored_by: str
    created: dt.datetime
    last_updated: dt.datetime
    comment: str | None = None
    follow_up: bool = False


@dataclass
class User:
    """A user who may log in; ``org_units`` are the data capture roots."""

    uid: str
    username: str
    password: str
    org_units: tuple[str, ...]
    first_name: str = "John"
    surname: str = "Traore"
    failed_logins: int = 0
    locked: bool = False
    authorities: tuple[str, ...] = ("ALL",)


@dataclass
class OAuthClient:
    """A client registered with the legacy ``/uaa`` authorisation server."""

    client_id: str
    secret: str
    access_token_ttl: int = 3600


@dataclass
class AccessToken:
    """An issued OAuth2 access token."""

    token: str
    refresh_token: str
    username: str
    client_id: str
    expires_at: dt.datetime
    revoked: bool = False


@dataclass
class Job:
    """A finished background job (tracker or data value import) and its result."""

    uid: str
    job_type: str
    created: dt.datetime
    notifications: list[dict[str, object]]
    result: dict[str, object]


class World:
    """All the fake's data, guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.org_units: dict[str, OrgUnit] = {}
        self.category_combos: dict[str, CategoryCombo] = {
            DEFAULT_CATEGORY_COMBO: CategoryCombo(
                DEFAULT_CATEGORY_COMBO, "default", "default", [DEFAULT_COC]
            )
        }
        self.category_option_combos: dict[str, CategoryOptionCombo] = {
            DEFAULT_COC: CategoryOptionCombo(
                DEFAULT_COC, "default", "default", DEFAULT_CATEGORY_COMBO
            )
        }
        self.option_sets: dict[str, OptionSet] = {}
        self.data_elements: dict[str, DataElement] = {}
        self.data_sets: dict[str, DataSet] = {}
        self.programs: dict[str, Program] = {}
        self.program_stages: dict[str, ProgramStage] = {}
        self.attributes: dict[str, TrackedEntityAttribute] = {}
        self.tracked_entities: dict[str, TrackedEntity] = {}
        self.enrollments: dict[str, Enrollment] = {}
        self.events: dict[str, Event] = {}
        self.data_values: dict[tuple[str, str, str, str, str], AggregateValue] = {}
        self.complete_dates: dict[tuple[str, str, str], dt.date] = {}
        self.users: dict[str, User] = {}
        self.pat_tokens: dict[str, str] = {}
        self.oauth_clients: dict[str, OAuthClient] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, AccessToken] = {}
        self.sessions: dict[str, str] = {}
        self.jobs: dict[str, Job] = {}
        self._seq = 0
        # bumped by every metadata change, so renderings cached by the fake are dropped
        self.revision = 0

    def next_seq(self) -> int:
        """The next internal database id."""
        with self.lock:
            self._seq += 1
            return self._seq

    # --- org unit tree -------------------------------------------------------------------

    def descendants(self, uid: str) -> list[str]:
        """``uid`` and every org unit below it (depth first)."""
        with self.lock:
            out: list[str] = []
            stack = [uid]
            while stack:
                current = stack.pop()
                ou = self.org_units.get(current)
                if ou is None:
                    continue
                out.append(current)
                stack.extend(reversed(ou.children))
            return out

    def is_descendant(self, uid: str, root: str) -> bool:
        """True when ``uid`` is ``root`` or lies below it."""
        ou = self.org_units.get(uid)
        return ou is not None and root in ou.path.split("/")

    # --- identifier schemes ----------------------------------------------------------------

    def resolve(self, collection: str, ident: str, scheme: str) -> str | None:
        """Map an identifier in ``scheme`` (UID, CODE or NAME) to the UID, or None."""
        table: dict[str, object] = getattr(self, collection)
        scheme = scheme.upper()
        if scheme in ("UID", "ID", ""):
            return ident if ident in table else None
        attr = "code" if scheme == "CODE" else "name"
        for uid, obj in table.items():
            if getattr(obj, attr, None) == ident:
                return uid
        return None

    def identify(self, collection: str, uid: str, scheme: str) -> str:
        """Render the UID ``uid`` in ``scheme`` (falls back to the UID when absent)."""
        scheme = scheme.upper()
        if scheme in ("UID", "ID", ""):
            return uid
        obj = getattr(self, collection).get(uid)
        value = getattr(obj, "code" if scheme == "CODE" else "name", None) if obj else None
        return value if isinstance(value, str) and value else uid
