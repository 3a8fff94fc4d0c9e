"""FakeDhis2: the public facade that owns the world, the clock, the routes and the server."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import secrets
import string
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from zoneinfo import ZoneInfo

from dhis2_lmis.testing import _aggregate, _auth, _metadata, _tracker_import, _tracker_read
from dhis2_lmis.testing._demo import seed_demo
from dhis2_lmis.testing._server import (
    Fault,
    FaultKind,
    HttpServer,
    Latency,
    RecordedRequest,
    Request,
    Response,
    web_message,
)
from dhis2_lmis.testing._version import FakeVersion, parse_version
from dhis2_lmis.testing._world import (
    DEFAULT_CATEGORY_COMBO,
    DEFAULT_COC,
    AggregateValue,
    CategoryCombo,
    CategoryOptionCombo,
    DataElement,
    DataInputPeriod,
    DataSet,
    Enrollment,
    Event,
    OAuthClient,
    OptionSet,
    OrgUnit,
    Program,
    ProgramStage,
    TrackedEntity,
    TrackedEntityAttribute,
    User,
    World,
    new_uid,
)

__all__ = ["FakeDhis2"]

log = logging.getLogger(__name__)

RouteHandler = Callable[["FakeDhis2", Request, "re.Match[str]", "User | None"], Response]
_VERSIONED_API = re.compile(r"^/api/(\d{2})(/.*)$")
_B64 = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler
    auth: bool = True
    first: int = 36
    last: int = 99
    available: Callable[[FakeVersion], bool] | None = None


def _route(
    method: str,
    pattern: str,
    handler: RouteHandler,
    *,
    auth: bool = True,
    first: int = 36,
    last: int = 99,
    available: Callable[[FakeVersion], bool] | None = None,
) -> _Route:
    return _Route(method, re.compile(pattern), handler, auth, first, last, available)


def _ping_available(v: FakeVersion) -> bool:
    # /api/ping arrived in patches: 2.37.10, 2.38.4, 2.39.2, then every 2.40+
    return (
        v.minor >= 40
        or (v.minor == 37 and v.patch >= 10)
        or (v.minor == 38 and v.patch >= 4)
        or (v.minor == 39 and v.patch >= 2)
    )


_ROUTES: tuple[_Route, ...] = (
    _route("GET", r"/api/ping", _metadata.handle_ping, auth=False, available=_ping_available),
    _route("GET", r"/api/system/ping", _metadata.handle_system_ping),
    _route("GET", r"/api/system/info", _metadata.handle_system_info),
    _route("GET", r"/api/system/id", _metadata.handle_system_id),
    _route("GET", r"/api/me", _metadata.handle_me),
    _route("POST", r"/api/auth/login", _auth.handle_json_login, auth=False, first=41),
    _route("POST", r"/uaa/oauth/token", _auth.handle_oauth_token, auth=False, last=41),
    _route(
        "POST",
        r"/dhis-web-commons-security/login\.action",
        _auth.handle_form_login,
        auth=False,
        last=40,
    ),
    _route(
        "GET",
        r"/dhis-web-commons/security/login\.action",
        _auth.handle_login_page,
        auth=False,
        last=40,
    ),
    _route("GET", r"/dhis-web-login/?", _auth.handle_login_page, auth=False, first=41),
    _route("GET", r"/dhis-web-dashboard/?", _auth.handle_login_page),
    _route("GET", r"/api/tracker/events", _tracker_read.handle_events),
    _route("GET", r"/api/tracker/events/(?P<uid>\w+)", _tracker_read.handle_event),
    _route("GET", r"/api/tracker/trackedEntities", _tracker_read.handle_tracked_entities),
    _route(
        "GET", r"/api/tracker/trackedEntities/(?P<uid>\w+)", _tracker_read.handle_tracked_entity
    ),
    _route("GET", r"/api/tracker/enrollments", _tracker_read.handle_enrollments),
    _route("POST", r"/api/tracker", _tracker_import.handle_import),
    _route("GET", r"/api/tracker/jobs/(?P<uid>\w+)", _tracker_import.handle_job),
    _route("GET", r"/api/tracker/jobs/(?P<uid>\w+)/report", _tracker_import.handle_job_report),
    _route("GET", r"/api/events", _tracker_read.handle_legacy_events, last=41),
    _route("GET", r"/api/events/(?P<uid>\w+)", _tracker_read.handle_legacy_event, last=41),
    _route("POST", r"/api/events", _tracker_import.handle_legacy_import, last=41),
    _route("GET", r"/api/dataValueSets", _aggregate.handle_get),
    _route("POST", r"/api/dataValueSets", _aggregate.handle_post),
    _route("GET", r"/api/system/tasks/(?P<type>\w+)/(?P<uid>\w+)", _aggregate.handle_task),
    _route(
        "GET",
        r"/api/system/taskSummaries/(?P<type>\w+)/(?P<uid>\w+)",
        _aggregate.handle_task_summary,
    ),
    _route("GET", r"/api/(?P<collection>\w+)", _metadata.handle_list),
    _route("GET", r"/api/(?P<collection>\w+)/(?P<uid>\w+)", _metadata.handle_object),
)


def _make_pat() -> str:
    body = "".join(secrets.choice(_B64) for _ in range(32))
    return f"d2pat_{body}{zlib.crc32(body.encode()):010d}"


class FakeDhis2:
    """An in-memory DHIS2 on 127.0.0.1 that answers in the exact shapes of one version.

    The socket is bound on construction (so ``url`` is known at once); ``start()`` or ``with``
    begins serving. A default user ``admin``/``district`` exists, with the first org unit added as
    its root unless it was given roots explicitly.

    Example::

        with FakeDhis2(version="2.40") as fake:
            fake.add_org_unit("ImspTQPwCqd", "SL", "Sierra Leone")
            requests.get(f"{fake.url}/api/system/info", auth=("admin", "district"))

    Args:
        version: ``"2.36"`` .. ``"2.43"`` or a full string such as ``"2.40.3"``.
        time_zone: the server time zone (``serverTimeZoneId``); timestamps are local to it.
        now: the fake clock's start (naive = local to ``time_zone``); default: the real time.
        lockout: lock a user after 4 failed logins (DHIS2's ``keyLockMultipleFailedLogins``).
        pat_enabled: honour ``ApiToken`` headers; default off on 2.37, on from 2.38 (never on 2.36).
        strict: the pytest fixture fails a test when a request hit no route or crashed a handler.
        latency: answer event pages no sooner than a real server would (see :class:`Latency`).
    """

    def __init__(
        self,
        version: str = "2.41",
        *,
        time_zone: str = "Etc/UTC",
        now: dt.datetime | None = None,
        lockout: bool = False,
        pat_enabled: bool | None = None,
        strict: bool = True,
        latency: Latency | None = None,
    ) -> None:
        self.server_version = parse_version(version)
        self.world = World()
        self._tz_name = time_zone
        self._tz = ZoneInfo(time_zone)
        self._clock_lock = threading.Lock()
        start = now if now is not None else dt.datetime.now(self._tz)
        self._now = self._naive(start).replace(microsecond=(start.microsecond // 1000) * 1000)
        self.lockout = lockout
        self.pat_enabled = (self.server_version.minor >= 38) if pat_enabled is None else pat_enabled
        self.strict = strict
        self.unanswered: list[str] = []
        self.system_id = "eed3d451-4ff5-4193-b951-ffcc68954299"
        self._http = HttpServer(self._dispatch)
        self._http.latency = latency
        self._renders: dict[tuple[object, ...], bytes] = {}
        self._renders_of: tuple[int, dt.datetime] | None = None
        self._started = False
        self.add_user("admin", "district", uid="M5zQapPyTZI")

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    def demo(cls, version: str = "2.41", **options: object) -> FakeDhis2:
        """A fake seeded with the demo LMIS world (see ``dhis2_lmis.testing.DEMO``)."""
        fake = cls(version, **options)  # type: ignore[arg-type]  # options forwarded verbatim
        seed_demo(fake)
        return fake

    @property
    def version(self) -> str:
        """The version string this fake reports (e.g. ``"2.41.0"``)."""
        return self.server_version.full

    @property
    def url(self) -> str:
        """The base URL, without ``/api``: ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._http.port}"

    def start(self) -> FakeDhis2:
        """Begin serving (idempotent)."""
        if not self._started:
            self._http.start()
            self._started = True
            log.debug("FakeDhis2 %s serving on %s", self.version, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._http.stop()
        self._started = False

    def __enter__(self) -> FakeDhis2:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- settings --------------------------------------------------------------------------

    @property
    def latency(self) -> Latency | None:
        """How long event pages take to answer; None (the default): as fast as possible."""
        return self._http.latency

    @latency.setter
    def latency(self, value: Latency | None) -> None:
        self._http.latency = value

    def rendered(self, key: tuple[object, ...], render: Callable[[], bytes]) -> bytes:
        """The JSON of one object for one request shape, rendered once while nothing changes.

        Every write stamps the clock and every metadata change bumps ``world.revision``, so
        the cache is dropped on either; keys carry the object's ``updatedAt`` as well. This
        keeps a page of 1,000 events cheap to serve again, as a load test needs.
        """
        generation = (self.world.revision, self.now)
        if generation != self._renders_of:
            self._renders, self._renders_of = {}, generation
        renders = self._renders
        cached = renders.get(key)
        if cached is None:
            cached = renders[key] = render()
        return cached

    @property
    def time_zone(self) -> str:
        """``serverTimeZoneId``; changing it re-expresses the clock in the new zone."""
        return self._tz_name

    @time_zone.setter
    def time_zone(self, name: str) -> None:
        new_tz = ZoneInfo(name)
        with self._clock_lock:
            aware = self._now.replace(tzinfo=self._tz)
            self._tz, self._tz_name = new_tz, name
            self._now = aware.astimezone(new_tz).replace(tzinfo=None)

    @property
    def tz(self) -> ZoneInfo:
        """The server time zone as a ``ZoneInfo``."""
        return self._tz

    @property
    def now(self) -> dt.datetime:
        """The fake clock (naive, server-local). Each write stamps it and moves it 1 ms on."""
        with self._clock_lock:
            return self._now

    @now.setter
    def now(self, value: dt.datetime) -> None:
        with self._clock_lock:
            self._now = self._naive(value)

    def advance(self, seconds: float) -> dt.datetime:
        """Move the fake clock forward and return the new time."""
        with self._clock_lock:
            self._now += dt.timedelta(seconds=seconds)
            return self._now

    def tick(self) -> dt.datetime:
        """The timestamp for a write; the clock then moves on 1 ms so writes stay ordered."""
        with self._clock_lock:
            stamp = self._now
            self._now += dt.timedelta(milliseconds=1)
            return stamp

    def _naive(self, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            return value
        return value.astimezone(self._tz).replace(tzinfo=None)

    # --- users, tokens, OAuth2 clients ----------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        org_units: Sequence[str] = (),
        uid: str | None = None,
        first_name: str = "John",
        surname: str = "Traore",
        authorities: Sequence[str] = ("ALL",),
    ) -> User:
        """Add (or replace) a user; ``org_units`` are its data capture roots.

        ``authorities`` matter to aggregate imports: without ``ALL`` or ``F_EDIT_EXPIRED`` the
        user cannot write periods past a data set's ``expiry_days``.
        """
        user = User(
            uid or new_uid(),
            username,
            password,
            tuple(org_units),
            first_name,
            surname,
            authorities=tuple(authorities),
        )
        with self.world.lock:
            self.world.revision += 1
            self.world.users[username] = user
        return user

    def add_token(self, username: str, *, token: str | None = None) -> str:
        """Issue a personal access token (``d2pat_...``) for ``username`` and return it.

        Honoured only on 2.37+ while ``pat_enabled`` is true.
        """
        value = token or _make_pat()
        with self.world.lock:
            if username not in self.world.users:
                raise KeyError(f"no user {username!r}")
            self.world.pat_tokens[value] = username
        return value

    def add_oauth_client(
        self, client_id: str, secret: str, *, access_token_ttl: int = 3600
    ) -> None:
        """Register a client with the legacy ``/uaa/oauth/token`` server (2.36-2.41)."""
        with self.world.lock:
            self.world.oauth_clients[client_id] = OAuthClient(client_id, secret, access_token_ttl)

    def expire_tokens(self) -> None:
        """Invalidate every issued OAuth2 access token and every session cookie.

        Refresh tokens stay valid, as they outlive access tokens on a real server.
        """
        with self.world.lock:
            for token in self.world.access_tokens.values():
                token.revoked = True
            self.world.sessions.clear()

    # --- faults and the request log --------------------------------------------------------

    def inject(
        self,
        method: str,
        path: str,
        *,
        status: int = 503,
        times: int = 1,
        retry_after: str | int | None = None,
        body: str | bytes | None = None,
        fault: FaultKind = "status",
        seconds: float = 0.0,
        content_type: str | None = None,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path`` misbehave.

        Args:
            method: HTTP method, or ``"*"`` for any.
            path: an fnmatch pattern on the path (no query string), e.g. ``"/api/*"``.
            status: the status of a ``"status"`` fault (502/503/504 get an nginx HTML page,
                others a WebMessage, unless ``body`` is given).
            times: how many matching requests the fault consumes.
            retry_after: the ``Retry-After`` header of a ``"status"`` fault.
            body: the body of a ``"status"`` fault (HTML if it starts with ``<``).
            fault: ``"status"``, ``"drop"`` (close before acting), ``"drop_after"`` (act, then
                close without answering: a POST's write happens), ``"delay"`` (sleep ``seconds``
                first), ``"html_login"`` (200 login page), ``"malformed_json"``,
                ``"truncated_json"`` (act, answer half the body).
            seconds: the delay of a ``"delay"`` fault.
            content_type: overrides the Content-Type of a ``"status"`` fault with ``body``.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        self._http.add_fault(
            Fault(
                method=method,
                path=path,
                kind=fault,
                times=times,
                status=status,
                retry_after=None if retry_after is None else str(retry_after),
                body=body.encode() if isinstance(body, str) else body,
                content_type=content_type,
                seconds=seconds,
            )
        )

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self._http.clear_faults()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy)."""
        return self._http.requests

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._http.clear_requests()

    @property
    def errors(self) -> list[str]:
        """Handler crashes (each was answered with a 500); a fake bug, never expected."""
        return list(self._http.errors)

    # --- metadata seeding ------------------------------------------------------------------

    def add_org_unit(
        self, uid: str, code: str | None, name: str, parent: str | None = None
    ) -> OrgUnit:
        """Add an org unit under ``parent`` (path and level are derived)."""
        with self.world.lock:
            self.world.revision += 1
            if parent is not None:
                up = self.world.org_units[parent]
                path, level = f"{up.path}/{uid}", up.level + 1
                up.children.append(uid)
            else:
                path, level = f"/{uid}", 1
            ou = OrgUnit(uid, code, name, parent, path, level)
            self.world.org_units[uid] = ou
            for user in self.world.users.values():
                if not user.org_units and parent is None:
                    user.org_units = (uid,)
            return ou

    def add_category_combo(
        self,
        uid: str,
        code: str | None,
        name: str,
        option_combos: Mapping[str, str | None] | None = None,
        *,
        names: Mapping[str, str] | None = None,
    ) -> CategoryCombo:
        """Add a category combo; ``option_combos`` maps option combo UID to its code (None:
        no code), ``names`` option combo UID to its name (default: the code, else the UID)."""
        with self.world.lock:
            self.world.revision += 1
            combo = CategoryCombo(uid, code, name, list(option_combos or {}))
            self.world.category_combos[uid] = combo
            for coc_uid, coc_code in (option_combos or {}).items():
                coc_name = (names or {}).get(coc_uid) or coc_code or coc_uid
                self.world.category_option_combos[coc_uid] = CategoryOptionCombo(
                    coc_uid, coc_code, coc_name, uid
                )
            return combo

    def add_data_element(
        self,
        uid: str,
        code: str | None,
        name: str,
        *,
        value_type: str = "INTEGER",
        zero_is_significant: bool = False,
        category_combo: str = DEFAULT_CATEGORY_COMBO,
        domain_type: str = "AGGREGATE",
        option_set: str | None = None,
    ) -> DataElement:
        """Add a data element (``value_type`` and ``option_set`` drive value validation)."""
        de = DataElement(
            uid,
            code,
            name,
            value_type,
            zero_is_significant,
            category_combo,
            domain_type,
            option_set,
        )
        with self.world.lock:
            self.world.revision += 1
            self.world.data_elements[uid] = de
        return de

    def add_data_set(
        self,
        uid: str,
        code: str | None,
        name: str,
        *,
        period_type: str = "Monthly",
        data_elements: Sequence[str] = (),
        org_units: Sequence[str] = (),
        category_combo: str = DEFAULT_CATEGORY_COMBO,
        expiry_days: int = 0,
        open_future_periods: int = 0,
        input_periods: Sequence[DataInputPeriod] = (),
    ) -> DataSet:
        """Add a data set with its data elements, assigned org units and entry windows.

        ``category_combo`` holds its attribute option combos (a funding source, say). Imports
        refuse values of periods ``expiry_days`` after their end (0: never), after the
        ``open_future_periods``-th period from now, or, when ``input_periods`` are given,
        outside them, as DHIS2 does.
        """
        ds = DataSet(
            uid,
            code,
            name,
            period_type,
            tuple(data_elements),
            tuple(org_units),
            category_combo,
            expiry_days,
            open_future_periods,
            tuple(input_periods),
        )
        with self.world.lock:
            self.world.revision += 1
            self.world.data_sets[uid] = ds
        return ds

    def add_option_set(
        self,
        uid: str,
        code: str | None,
        name: str,
        options: Sequence[str],
        *,
        value_type: str = "TEXT",
    ) -> OptionSet:
        """Add an option set; ``options`` are the codes its values must be one of."""
        option_set = OptionSet(uid, code, name, value_type, tuple(options))
        with self.world.lock:
            self.world.option_sets[uid] = option_set
        return option_set

    def add_tracked_entity_attribute(
        self, uid: str, code: str | None, name: str, *, value_type: str = "TEXT"
    ) -> TrackedEntityAttribute:
        """Add a tracked entity attribute."""
        tea = TrackedEntityAttribute(uid, code, name, value_type)
        with self.world.lock:
            self.world.revision += 1
            self.world.attributes[uid] = tea
        return tea

    def add_program(
        self,
        uid: str,
        name: str,
        *,
        code: str | None = None,
        program_type: Literal["WITHOUT_REGISTRATION", "WITH_REGISTRATION"] = "WITHOUT_REGISTRATION",
        stages: Mapping[str, Sequence[str]] | None = None,
        stage_names: Mapping[str, str] | None = None,
        attributes: Sequence[str] = (),
        org_units: Sequence[str] = (),
    ) -> Program:
        """Add a program; ``stages`` maps each stage UID to its data element UIDs."""
        stage_map = dict(stages or {})
        with self.world.lock:
            self.world.revision += 1
            for stage_uid, des in stage_map.items():
                stage_name = (stage_names or {}).get(stage_uid, f"{name} stage")
                self.world.program_stages[stage_uid] = ProgramStage(
                    stage_uid, None, stage_name, uid, tuple(des)
                )
            program = Program(
                uid, code, name, program_type, tuple(stage_map), tuple(attributes), tuple(org_units)
            )
            self.world.programs[uid] = program
            return program

    # --- data seeding ----------------------------------------------------------------------

    def add_tracked_entity(
        self,
        uid: str,
        org_unit: str,
        program: str | None = None,
        *,
        attributes: Mapping[str, str] | None = None,
        enrollment_uid: str | None = None,
        enrollment_status: str = "ACTIVE",
        enrolled_at: dt.datetime | None = None,
        tracked_entity_type: str = "nEenWmSyUEp",
    ) -> TrackedEntity:
        """Add a tracked entity, enrolled in ``program`` when one is given."""
        stamp = self.tick()
        te = TrackedEntity(uid, org_unit, tracked_entity_type, dict(attributes or {}), stamp, stamp)
        with self.world.lock:
            self.world.tracked_entities[uid] = te
            if program is not None:
                when = self._naive(enrolled_at) if enrolled_at else stamp
                enrollment = Enrollment(
                    enrollment_uid or new_uid(),
                    program,
                    org_unit,
                    uid,
                    enrollment_status,
                    when,
                    when,
                    stamp,
                    stamp,
                )
                self.world.enrollments[enrollment.uid] = enrollment
                te.enrollments.append(enrollment.uid)
        return te

    def add_event(
        self,
        uid: str | None,
        program: str,
        org_unit: str,
        *,
        status: str = "COMPLETED",
        data_values: Mapping[str, str | int | float] | None = None,
        program_stage: str | None = None,
        occurred_at: dt.datetime | None = None,
        scheduled_at: dt.datetime | None = None,
        created_at: dt.datetime | None = None,
        updated_at: dt.datetime | None = None,
        completed_at: dt.datetime | None = None,
        tracked_entity: str | None = None,
        enrollment: str | None = None,
        deleted: bool = False,
        stored_by: str = "admin",
    ) -> Event:
        """Add an event as if it had been captured earlier (no validation).

        ``program_stage`` defaults to the program's first stage; for a tracker program the
        enrollment defaults to the tracked entity's enrollment in the program.
        """
        with self.world.lock:
            prog = self.world.programs[program]
            stage = program_stage or (prog.stages[0] if prog.stages else "")
            if tracked_entity is not None and enrollment is None:
                te = self.world.tracked_entities[tracked_entity]
                enrollment = next(
                    (e for e in te.enrollments if self.world.enrollments[e].program == program),
                    None,
                )
            if enrollment is not None and tracked_entity is None:
                tracked_entity = self.world.enrollments[enrollment].tracked_entity
        stamp = self.tick()
        updated = self._naive(updated_at) if updated_at else None
        created = self._naive(created_at) if created_at else (updated or stamp)
        updated = updated or created
        occurred = (
            self._naive(occurred_at)
            if occurred_at
            else created.replace(hour=0, minute=0, second=0, microsecond=0)
        )
        completed = (
            self._naive(completed_at)
            if completed_at
            else (updated if status == "COMPLETED" else None)
        )
        values = {k: _value_text(v) for k, v in (data_values or {}).items()}
        event = Event(
            uid=uid or new_uid(),
            program=program,
            program_stage=stage,
            org_unit=org_unit,
            status=status,
            occurred_at=occurred,
            scheduled_at=self._naive(scheduled_at) if scheduled_at else occurred,
            completed_at=completed,
            created_at=created,
            updated_at=updated,
            data_values=values,
            seq=self.world.next_seq(),
            tracked_entity=tracked_entity,
            enrollment=enrollment,
            deleted=deleted,
            stored_by=stored_by,
            completed_by=stored_by if completed else None,
            value_times={k: (created, updated) for k in values},
        )
        with self.world.lock:
            self.world.events[event.uid] = event
        return copy.deepcopy(event)

    def touch_event(
        self,
        uid: str,
        *,
        data_values: Mapping[str, str | int | float | None] | None = None,
        status: str | None = None,
    ) -> Event:
        """Change an event as a DHIS2 user would: merge values, bump ``updatedAt`` to now."""
        stamp = self.tick()
        with self.world.lock:
            event = self.world.events[uid]
            for de, value in (data_values or {}).items():
                if value is None or value == "":
                    event.data_values.pop(de, None)
                    event.value_times.pop(de, None)
                else:
                    event.data_values[de] = _value_text(value)
                    created = event.value_times.get(de, (stamp, stamp))[0]
                    event.value_times[de] = (created, stamp)
            if status is not None:
                if status == "COMPLETED" and event.status != "COMPLETED":
                    event.completed_at = stamp
                    event.completed_by = event.stored_by
                event.status = status
            event.updated_at = stamp
            return copy.deepcopy(event)

    def delete_event(self, uid: str) -> None:
        """Soft-delete an event (``deleted: true``, visible with ``includeDeleted``)."""
        stamp = self.tick()
        with self.world.lock:
            event = self.world.events[uid]
            event.deleted = True
            event.updated_at = stamp

    def add_data_value(
        self,
        data_element: str,
        period: str,
        org_unit: str,
        value: str | int | float,
        *,
        category_option_combo: str = DEFAULT_COC,
        attribute_option_combo: str = DEFAULT_COC,
        stored_by: str = "admin",
        comment: str | None = None,
    ) -> AggregateValue:
        """Store an aggregate data value (upsert)."""
        stamp = self.tick()
        key = (data_element, period, org_unit, category_option_combo, attribute_option_combo)
        record = AggregateValue(
            *key,
            value=_value_text(value),
            stored_by=stored_by,
            created=stamp,
            last_updated=stamp,
            comment=comment,
        )
        with self.world.lock:
            self.world.data_values[key] = record
        return copy.deepcopy(record)

    # --- read access -----------------------------------------------------------------------

    @property
    def events(self) -> dict[str, Event]:
        """A snapshot of every event by UID (copies: changing them changes nothing)."""
        with self.world.lock:
            return copy.deepcopy(self.world.events)

    @property
    def data_values(self) -> list[AggregateValue]:
        """A snapshot of every stored aggregate value."""
        with self.world.lock:
            return copy.deepcopy(list(self.world.data_values.values()))

    @property
    def tracked_entities(self) -> dict[str, TrackedEntity]:
        """A snapshot of every tracked entity by UID."""
        with self.world.lock:
            return copy.deepcopy(self.world.tracked_entities)

    @property
    def enrollments(self) -> dict[str, Enrollment]:
        """A snapshot of every enrollment by UID."""
        with self.world.lock:
            return copy.deepcopy(self.world.enrollments)

    # --- dispatch --------------------------------------------------------------------------

    def _dispatch(self, req: Request) -> Response:
        api_version: int | None = None
        versioned = _VERSIONED_API.match(req.path)
        if versioned is not None:
            api_version = int(versioned.group(1))
            req.path = "/api" + versioned.group(2)
        if req.path.startswith("/api/") and req.path.endswith(".json"):
            req.path = req.path[: -len(".json")]
        if len(req.path) > 1 and req.path.endswith("/") and req.path.startswith("/api/"):
            req.path = req.path.rstrip("/")
        route, match = self._find(req)
        if route is None or match is None:
            if req.path.startswith("/api/"):
                auth = _auth.authenticate(self, req)
                if auth.refusal is not None:
                    return auth.refusal
            self.unanswered.append(f"{req.method} {req.path}")
            return web_message(404, f"No route for {req.method} {req.path}")
        minor = self.server_version.minor
        present = route.first <= minor <= route.last and (
            route.available is None or route.available(self.server_version)
        )
        if not present and not route.auth and not req.path.startswith("/api/"):
            # e.g. /uaa on 2.42: the servlet is gone, not protected
            return web_message(404, f"{req.path} does not exist on DHIS2 {self.version}")
        user: User | None = None
        cookie: str | None = None
        if route.auth or (not present and req.path.startswith("/api/")):
            auth = _auth.authenticate(self, req)
            if auth.refusal is not None:
                return auth.refusal
            user, cookie = auth.user, auth.set_cookie
        if not present:
            return web_message(404, f"{req.path} does not exist on DHIS2 {self.version}")
        req.api_version = api_version
        response = route.handler(self, req, match, user)
        if cookie is not None:
            response.headers.append(("Set-Cookie", cookie))
        return response

    def _find(self, req: Request) -> tuple[_Route | None, re.Match[str] | None]:
        for route in _ROUTES:
            if route.method != req.method and not (route.method == "GET" and req.method == "HEAD"):
                continue
            match = route.pattern.fullmatch(req.path)
            if match is not None:
                return route, match
        return None, None


def _value_text(value: str | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
