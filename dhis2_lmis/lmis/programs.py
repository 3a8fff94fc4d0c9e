"""Order, Receipt and STR readers: program events -> LMIS records, one reader per program.

Each reader is built from its own configuration section and reads events lazily, a page at a
time (:func:`~dhis2_lmis.dhis2.events.iter_event_pages`), mapping one event at a time, so nothing
loads a whole program into memory. Look-ups done in batches (item refs in the other id scheme,
STR item codes) are batched per page, and their caches live only as long as one fetch. A record
that cannot be mapped completely is still yielded, with its ``problems`` filled (an unknown item,
an org unit that matches no store, a quantity that is not a number): one bad record never sinks
the batch, and a requisition line is never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Literal, Protocol, TypeVar

import attrs

from dhis2_lmis.dhis2._uids import IdScheme
from dhis2_lmis.dhis2.events import EventQuery, iter_event_pages, iter_tracked_entities
from dhis2_lmis.dhis2.records import Event, RecordProblem
from dhis2_lmis.dhis2.session import Dhis2Session, ParamValue
from dhis2_lmis.errors import ConfigError, NotFoundError, RequestRejectedError
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Customer,
    Item,
    Requisition,
    RequisitionLine,
    StockLevel,
    StockTransaction,
    Store,
)
from dhis2_lmis.lmis.stock import StrSettings

__all__ = [
    "ItemLookup",
    "OrderReader",
    "OrgUnitLookup",
    "ReceiptReader",
    "StrReader",
    "parse_quantity",
]

log = logging.getLogger(__name__)

ProgramKey = Literal["order", "receipt", "str"]
# Tracked entities per look-up request: keeps the URL far below proxy limits.
_TE_BATCH = 100
_T = TypeVar("_T")


class ItemLookup(Protocol):
    """What the fetchers need of an :class:`~dhis2_lmis.lmis.references.ItemResolver`."""

    def prefetch(self, refs: Iterable[str]) -> None:
        """Translate, in one batch, the refs an answer carried in the other id scheme."""

    def item_for_ref(self, ref: str) -> Item | None:
        """The item a data element ref (configured scheme, or a UID instead) stands for."""

    def item_for(self, ref: str) -> Item | None:
        """The item whose configured reference is ``ref``."""

    def describe_lookup(self, ref: str) -> str:
        """A sentence saying where ``ref`` was looked for."""


class OrgUnitLookup(Protocol):
    """What the fetchers need of an :class:`~dhis2_lmis.lmis.references.OrgUnitResolver`."""

    def store_for(self, org_unit: str) -> Store | None:
        """The supplying store mapped to ``org_unit``."""

    def customer_for(self, org_unit: str) -> Customer | None:
        """The customer (requesting facility) mapped to ``org_unit``."""

    def describe_lookup(self, org_unit: str) -> str:
        """A sentence saying where ``org_unit`` was looked for."""

    def prefetch(self, org_units: Iterable[str]) -> None:
        """Learn the org units of a page in one batch, before they are asked one by one."""


def _naming_the_setting(events: Iterator[_T], key: str, uid: str) -> Iterator[_T]:
    """Pass ``events`` (or pages of them) on; name the setting when DHIS2 lacks the program.

    DHIS2 answers an unknown program with 400 "Program is specified but does not exist: <uid>"
    (404 on some paths), which names neither the configuration key nor the way to check it.
    """
    try:
        yield from events
    except (RequestRejectedError, NotFoundError) as exc:
        if exc.status != 404 and uid not in (exc.dhis2_message or ""):
            raise  # about something else (an org unit, a parameter): DHIS2's words suffice
        raise type(exc)(
            f'programs.{key}: DHIS2 has no program "{uid}"; correct the UID in the '
            "configuration, and run `dhis2-lmis check` to test every setting against the server",
            method=exc.method,
            path=exc.path,
            status=exc.status,
            dhis2_message=exc.dhis2_message,
        ) from exc


def parse_quantity(raw: str | None, *, where: str) -> tuple[Decimal | None, RecordProblem | None]:
    """Read a quantity DHIS2 sent as text: a number, never negative.

    Returns the quantity (None when unreadable) and the problem, if any.
    """
    if raw is None or not raw.strip():
        return None, RecordProblem("missing_value", f"{where} has no value")
    try:
        quantity = Decimal(raw.strip())
    except InvalidOperation:
        return None, RecordProblem("non_numeric", f"{where} is not a number: {raw!r}", raw)
    if not quantity.is_finite():
        return None, RecordProblem("non_numeric", f"{where} is not a finite number: {raw!r}", raw)
    if quantity < 0:
        return quantity, RecordProblem("negative", f"{where} is negative: {raw}", raw)
    return quantity, None


def _is_number(raw: str | None) -> bool:
    if raw is None:
        return False
    try:
        return Decimal(raw.strip()).is_finite()
    except InvalidOperation:
        return False


@attrs.define
class _ProgramEvents:
    """What every program reader shares: which program, how to page through it, where events are.

    Args:
        session: the connection; its dialect decides the endpoints.
        org_units: resolves org units to stores and customers.
        page_size: events per request.
    """

    _key: ClassVar[ProgramKey]

    session: Dhis2Session
    org_units: OrgUnitLookup | None = attrs.field(kw_only=True, default=None)
    page_size: int = attrs.field(kw_only=True, default=1000)

    def program_uid(self) -> str:
        """The configured program UID.

        Raises:
            ConfigError: the program is not configured.
        """
        uid = self._configured_program()
        if not uid:
            key = self._key
            raise ConfigError(f"programs.{key} is not set: configure the {key} program UID")
        return uid

    def _configured_program(self) -> str | None:
        raise NotImplementedError  # each reader knows where its program is configured

    def pull(
        self,
        *,
        since: datetime | None = None,
        org_unit: str | None = None,
        status: str | None = None,
        workers: int = 1,
    ) -> Iterator[Event]:
        """The manual pull: the program's raw events, updated after ``since``.

        ``workers`` above 1 reads that many pages at once, in no overall order
        (:func:`~dhis2_lmis.dhis2.events.iter_events`).

        Raises:
            RequestRejectedError, NotFoundError: DHIS2 has no program with the configured UID;
                the message names the ``programs.<key>`` setting and suggests ``check``.
        """
        for page in self._pages(since=since, org_unit=org_unit, status=status, workers=workers):
            yield from page

    def source(self) -> str:
        """Where records come from, e.g. ``DHIS2 2.41.0 /api/tracker/events``."""
        return self.session.dialect.describe()

    def _query_scheme(self) -> IdScheme:
        """The id scheme data elements are asked for in (UID unless a reader says otherwise)."""
        return "UID"

    def _pages(
        self,
        *,
        since: datetime | None,
        org_unit: str | None,
        status: str | None,
        workers: int,
    ) -> Iterator[list[Event]]:
        uid = self.program_uid()
        query = EventQuery(
            program=uid,
            org_unit=org_unit,
            status=status,
            updated_after=since,
            page_size=self.page_size,
            data_element_id_scheme=self._query_scheme(),
        )
        pages = iter_event_pages(self.session, query, workers=workers)
        return _naming_the_setting(pages, self._key, uid)

    def _placed_pages(
        self, *, since: datetime | None, org_unit: str | None, workers: int
    ) -> Iterator[list[Event]]:
        """The completed events' pages, each page's org units looked up in one batch first
        (:meth:`_places` then asks the resolver's cache, not the server, event by event)."""
        pages = self._pages(since=since, org_unit=org_unit, status="COMPLETED", workers=workers)
        for page in pages:
            if self.org_units is not None:
                self.org_units.prefetch(event.org_unit for event in page if event.org_unit)
            yield page

    def _places(
        self, event: Event, problems: list[RecordProblem]
    ) -> tuple[Store | None, Customer | None]:
        if self.org_units is None or not event.org_unit:
            return None, None
        store = self.org_units.store_for(event.org_unit)
        customer = self.org_units.customer_for(event.org_unit)
        if store is None and customer is None:
            problems.append(
                RecordProblem(
                    "unknown_org_unit",
                    self.org_units.describe_lookup(event.org_unit),
                    event.org_unit,
                )
            )
        return store, customer


@attrs.define
class OrderReader(_ProgramEvents):
    """Reads the Order program (the ``programs.order`` UID and the ``[order]`` section).

    Args:
        program: the Order program UID; None when not configured (reading raises ConfigError).
        items: resolves data elements to items (None: lines keep ``item = None``).
        data_element_id_scheme: the scheme item references use (CODE or UID).
        item_data_element / quantity_data_element: the one-event-per-line layout; both None
            for one data element per item.
    """

    _key: ClassVar[ProgramKey] = "order"

    program: str | None = attrs.field(kw_only=True)
    items: ItemLookup | None = attrs.field(kw_only=True, default=None)
    data_element_id_scheme: IdScheme = attrs.field(kw_only=True, default="UID")
    item_data_element: str | None = attrs.field(kw_only=True, default=None)
    quantity_data_element: str | None = attrs.field(kw_only=True, default=None)

    def completed_requisitions(
        self, *, since: datetime | None = None, org_unit: str | None = None, workers: int = 1
    ) -> Iterator[Requisition]:
        """Completed Order-program events as requisitions (re-completed events come back)."""
        source = self.source()
        for page in self._placed_pages(since=since, org_unit=org_unit, workers=workers):
            if self.items is not None:  # refs a page carried in the other scheme, in one batch
                self.items.prefetch(dv.data_element for event in page for dv in event.data_values)
            for event in page:
                yield self.requisition(event, source)

    def requisition(self, event: Event, source: str) -> Requisition:
        """Map one Order-program event to a requisition."""
        problems = list(event.problems)
        store, customer = self._places(event, problems)
        if self.item_data_element and self.quantity_data_element:
            lines, other = self._line_per_event(event, problems)
        else:
            lines, other = self._line_per_data_element(event, problems)
        return Requisition(
            event=event,
            program=event.program,
            org_unit=event.org_unit,
            store=store,
            customer=customer,
            occurred_at=event.occurred_at,
            completed_at=event.completed_at,
            updated_at=event.updated_at,
            lines=tuple(lines),
            other_values=other,
            problems=tuple(problems),
            source=source,
        )

    def _configured_program(self) -> str | None:
        return self.program

    def _query_scheme(self) -> IdScheme:
        return self.data_element_id_scheme

    def _line_per_data_element(
        self, event: Event, problems: list[RecordProblem]
    ) -> tuple[list[RequisitionLine], dict[str, str | None]]:
        lines: list[RequisitionLine] = []
        other: dict[str, str | None] = {}
        for data_value in event.data_values:
            element, raw = data_value.data_element, data_value.value
            item = None
            if self.items is not None:
                item = self.items.item_for_ref(element)
                if item is None:
                    if not _is_number(raw):
                        other[element] = raw  # a comment or a date, not an order line
                        continue
                    problems.append(
                        RecordProblem("unknown_item", self.items.describe_lookup(element), element)
                    )
            quantity, problem = parse_quantity(raw, where=f"data element {element}")
            if problem is not None:
                if item is None and self.items is None and problem.kind == "non_numeric":
                    other[element] = raw  # without item references only numbers are lines
                    continue
                problems.append(problem)
            lines.append(RequisitionLine(element, item, quantity, raw))
        return lines, other

    def _line_per_event(
        self, event: Event, problems: list[RecordProblem]
    ) -> tuple[list[RequisitionLine], dict[str, str | None]]:
        item_element = self.item_data_element or ""
        quantity_element = self.quantity_data_element or ""
        ref = event.value(item_element)
        item = None
        if ref is None:
            problems.append(
                RecordProblem("missing_value", f"item data element {item_element} has no value")
            )
        elif self.items is not None:
            item = self.items.item_for(ref)
            if item is None:
                problems.append(RecordProblem("unknown_item", self.items.describe_lookup(ref), ref))
        raw = event.value(quantity_element)
        quantity, problem = parse_quantity(raw, where=f"data element {quantity_element}")
        if problem is not None:
            problems.append(problem)
        other = {
            dv.data_element: dv.value
            for dv in event.data_values
            if dv.data_element not in (item_element, quantity_element)
        }
        return [RequisitionLine(ref or item_element, item, quantity, raw)], other


@attrs.define
class ReceiptReader(_ProgramEvents):
    """Reads the Receipt program (the ``programs.receipt`` UID and the ``[receipt]`` section).

    Args:
        program: the Receipt program UID; None when not configured (reading raises ConfigError).
        consignment_data_element: the data element holding the consignment number.
    """

    _key: ClassVar[ProgramKey] = "receipt"

    program: str | None = attrs.field(kw_only=True)
    consignment_data_element: str | None = attrs.field(kw_only=True, default=None)

    def _configured_program(self) -> str | None:
        return self.program

    def completed_receipts(
        self, *, since: datetime | None = None, org_unit: str | None = None, workers: int = 1
    ) -> Iterator[ConsignmentReceipt]:
        """Completed Receipt-program events: acknowledged consignments."""
        source = self.source()
        for page in self._placed_pages(since=since, org_unit=org_unit, workers=workers):
            for event in page:
                yield self.receipt(event, source)

    def receipt(self, event: Event, source: str) -> ConsignmentReceipt:
        """Map one Receipt-program event to a consignment receipt."""
        problems = list(event.problems)
        store, customer = self._places(event, problems)
        number = None
        element = self.consignment_data_element
        if element:
            number = event.value(element)
            if not number:
                problems.append(
                    RecordProblem(
                        "missing_value",
                        f"consignment number data element {element} has no value",
                        element,
                    )
                )
        return ConsignmentReceipt(
            event=event,
            org_unit=event.org_unit,
            store=store,
            customer=customer,
            consignment_number=number,
            completed_at=event.completed_at,
            updated_at=event.updated_at,
            values=event.values(),
            problems=tuple(problems),
            source=source,
        )


@attrs.define
class StrReader(_ProgramEvents):
    """Reads the STR (Real-Time Stock) program, per the :class:`StrSettings` the pusher shares.

    Args:
        settings: the STR program, data elements and item-code attribute.
    """

    _key: ClassVar[ProgramKey] = "str"

    settings: StrSettings = attrs.field(kw_only=True)

    def _configured_program(self) -> str | None:
        return self.settings.program

    def stock_transactions(
        self, *, since: datetime | None = None, org_unit: str | None = None, workers: int = 1
    ) -> Iterator[StockTransaction]:
        """STR program events with their item codes, looked up in batches per page.

        The item codes and enrollment owners learnt are kept for this read only.
        """
        source = self.source()
        owners = _StrOwners(self)
        for page in self._pages(since=since, org_unit=org_unit, status=None, workers=workers):
            owners.learn(page)
            for event in page:
                yield self._transaction(event, source, owners)

    def stock_on_hand_levels(self, *, org_unit: str | None = None) -> Iterator[StockLevel]:
        """The latest stock on hand per (org unit, item): the "RTS SOH raw data".

        The latest event is the newest by event date, then creation time (the order the
        Android stock app uses), among events that carry a stock-on-hand value.
        """
        latest: dict[tuple[str, str], StockTransaction] = {}
        for transaction in self.stock_transactions(org_unit=org_unit):
            if transaction.stock_on_hand is None or transaction.event.deleted:
                continue
            key = (
                transaction.org_unit or "",
                # never one shared empty key: that would merge every item of a facility
                transaction.item_code
                or transaction.tracked_entity
                or transaction.enrollment
                or transaction.event.uid,
            )
            current = latest.get(key)
            if current is None or transaction.event.recency() > current.event.recency():
                latest[key] = transaction
        for (unit, _), transaction in sorted(latest.items()):
            yield StockLevel(
                org_unit=unit,
                item_code=transaction.item_code,
                stock_on_hand=transaction.stock_on_hand,
                as_of=transaction.occurred_at,
                event=transaction.event,
            )

    def item_code_for(self, tracked_entity: str) -> str | None:
        """The item code of one STR tracked entity (one request; nothing is kept)."""
        owners = _StrOwners(self)
        owners.load_item_codes([tracked_entity])
        return owners.item_codes.get(tracked_entity)

    def _transaction(self, event: Event, source: str, owners: _StrOwners) -> StockTransaction:
        """Map one STR event; its item code comes from what ``owners`` learnt for its page."""
        problems = list(event.problems)
        item_code = None
        tracked_entity = owners.tracked_entity_of(event)
        attribute = self.settings.item_code_attribute
        if attribute:
            if tracked_entity is None:
                problems.append(
                    RecordProblem("missing_tracked_entity", "the event has no tracked entity")
                )
            else:
                item_code = owners.item_codes.get(tracked_entity)
                if item_code is None:
                    problems.append(
                        RecordProblem(
                            "missing_value",
                            f"tracked entity {tracked_entity} has no item code attribute "
                            f"{attribute}",
                            tracked_entity,
                        )
                    )
        return StockTransaction(
            event=event,
            org_unit=event.org_unit,
            tracked_entity=tracked_entity,
            enrollment=event.enrollment,
            item_code=item_code,
            occurred_at=event.occurred_at,
            stock_on_hand=_quantity(event, self.settings.stock_on_hand, problems),
            received_quantity=_quantity(event, self.settings.received_quantity, problems),
            values=event.values(),
            problems=tuple(problems),
            source=source,
        )


def _quantity(
    event: Event, data_element: str | None, problems: list[RecordProblem]
) -> Decimal | None:
    if not data_element:
        return None
    raw = event.value(data_element)
    if raw is None:
        return None  # a distribution event carries no receipt; not a problem
    quantity, problem = parse_quantity(raw, where=f"data element {data_element}")
    if problem is not None:
        problems.append(problem)
    return quantity


@attrs.define
class _StrOwners:
    """Whose tracked entity each STR event is and that entity's item code, learnt for one read.

    Kept per fetch, not per reader: a long-lived client never accumulates them.
    """

    reader: StrReader
    item_codes: dict[str, str | None] = attrs.field(factory=dict)
    enrollment_owners: dict[str, str | None] = attrs.field(factory=dict)

    def learn(self, page: Sequence[Event]) -> None:
        """Look up, in batches, what the page's events need: owners first, then item codes."""
        self._load_enrollment_owners(page)
        self.load_item_codes(self.tracked_entity_of(e) for e in page)

    def tracked_entity_of(self, event: Event) -> str | None:
        """The event's tracked entity; DHIS2 2.37 leaves it out, so via its enrollment."""
        if event.tracked_entity or not event.enrollment:
            return event.tracked_entity
        return self.enrollment_owners.get(event.enrollment)

    def _load_enrollment_owners(self, events: Sequence[Event]) -> None:
        """Learn whose enrollments the events without a tracked entity belong to.

        DHIS2 2.37 sends tracker events without ``trackedEntity``. The STR program's tracked
        entities at each such event's org unit are read once (with their enrollments and item
        codes), which fills both maps in one request per org unit.
        """
        org_units = {
            e.org_unit
            for e in events
            if not e.tracked_entity
            and e.enrollment
            and e.org_unit
            and e.enrollment not in self.enrollment_owners
        }
        if not org_units:
            return
        reader = self.reader
        dialect = reader.session.dialect
        attribute = reader.settings.item_code_attribute
        for unit in sorted(org_units):
            params: dict[str, ParamValue] = {
                "program": reader.program_uid(),
                dialect.org_units_param: unit,
                dialect.org_unit_mode_param: "SELECTED",
            }
            entities = iter_tracked_entities(reader.session, params, page_size=reader.page_size)
            for entity in entities:
                if attribute:
                    self.item_codes[entity.uid] = entity.attributes.get(attribute)
                for enrollment in entity.enrollments:
                    self.enrollment_owners[enrollment.uid] = entity.uid
        for event in events:
            if event.enrollment:
                self.enrollment_owners.setdefault(event.enrollment, None)

    def load_item_codes(self, tracked_entities: Iterable[str | None]) -> None:
        """Read the item codes of the tracked entities not yet known, in URL-sized batches."""
        reader = self.reader
        attribute = reader.settings.item_code_attribute
        if not attribute:
            return
        missing = sorted({te for te in tracked_entities if te and te not in self.item_codes})
        if not missing:
            return
        session = reader.session
        dialect = session.dialect
        fixed: dict[str, ParamValue] = {
            "program": reader.program_uid(),
            dialect.org_unit_mode_param: "ACCESSIBLE",
            "fields": dialect.tracked_entity_fields,
        }
        chunks = session.batches(
            dialect.tracked_entities_path,
            fixed,
            missing,
            lambda group: dict([dialect.tracked_entity_uids(group)]),
            max_count=_TE_BATCH,
            page_size=_TE_BATCH + 1,
        )
        for chunk in chunks:
            params = {**fixed, **dict([dialect.tracked_entity_uids(chunk)])}
            # a page one larger than the chunk is never full: no second request to learn the end
            entities = iter_tracked_entities(session, params, page_size=len(chunk) + 1)
            for entity in entities:
                self.item_codes[entity.uid] = entity.attributes.get(attribute)
            for te in chunk:
                self.item_codes.setdefault(te, None)
