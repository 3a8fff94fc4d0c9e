"""Stock receipts to the STR (Real-Time Stock) tracker program: flow F4 of LMIS_DOMAIN.md §6.

A consignment received at a facility becomes one COMPLETED event on the item's stock card (the
tracked entity with that item code at that org unit): ``received_quantity = q`` and
``stock_on_hand = latest + q``, dated now. Three DHIS2 facts shape the code:

* **Never back-date.** The Android stock app and DHIS2's program rules read the current stock on
  hand from the latest event (by event date, then creation), so an event dated in the past would
  not correct the later balances (LMIS_DOMAIN.md §3.1). Every event is dated ``now()``.
* **Pushing twice must not count twice.** The event UID is derived from the receipt (reference,
  item code, org unit), so a repeated push finds the event already there and reports it as
  ``already_pushed``; a retried POST (client UIDs + ``CREATE_AND_UPDATE``) updates the same event
  instead of adding one.
* **Synchronous writes.** ``POST /api/tracker`` is asynchronous by default in every version;
  the dialect's write parameters ask for the synchronous handler (``async=false``, WEB_API.md
  §5.1). A server that queues a job anyway is polled until the job's report exists.

Look-ups are batched: one tracked-entity request per org unit (per chunk of item codes), one
request per chunk of derived event UIDs, and one small events read per stock card.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import string
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import attrs

from dhis2_lmis.dhis2 import _html
from dhis2_lmis.dhis2._clock import utc_now
from dhis2_lmis.dhis2._json import JsonObject, JsonValue
from dhis2_lmis.dhis2.convert import (
    JOB_REPORT_PARAMS,
    TrackedEntityRef,
    event_payload,
    events_payload,
    format_timestamp,
    job_completed,
    structure_event,
)
from dhis2_lmis.dhis2.events import INCLUDE_DELETED_PARAM, iter_tracked_entities
from dhis2_lmis.dhis2.imports import (
    TrackerImportMessage,
    TrackerImportReport,
    job_location,
    parse_legacy_event_summaries,
    parse_tracker_report,
)
from dhis2_lmis.dhis2.records import Event
from dhis2_lmis.dhis2.session import Dhis2Session, ParamValue
from dhis2_lmis.dhis2.versions import Dialect
from dhis2_lmis.errors import ConfigError, Dhis2TimeoutError, NotFoundError, PackingListError
from dhis2_lmis.lmis.datavalues import InvalidValueError, format_value
from dhis2_lmis.lmis.models import ConsignmentReceipt
from dhis2_lmis.lmis.references import foreign_separator

__all__ = [
    "OutcomeStatus",
    "PackingList",
    "StockPushReport",
    "StockPusher",
    "StockReceipt",
    "StockReceiptOutcome",
    "StrSettings",
    "csv_header_problem",
    "receipt_event_uid",
]

log = logging.getLogger(__name__)

OutcomeStatus = Literal["created", "already_pushed", "failed", "skipped"]

_UID_FIRST = string.ascii_letters
_UID_REST = string.ascii_letters + string.digits
_UID_NAMESPACE = b"dhis2-lmis/stock-receipt/v1"
_UIDS_PER_REQUEST = 100
_SOH_PAGE_SIZE = 5


def receipt_event_uid(reference: str, item_code: str, org_unit: str) -> str:
    """The DHIS2 event UID of one receipt line, derived so a repeated push names the same event.

    A SHA-256 of the three parts (and a namespace) is spelled in DHIS2's UID alphabet: 11
    characters, a letter first, then letters and digits (``^[a-zA-Z][a-zA-Z0-9]{10}$``).
    """
    digest = hashlib.sha256(
        b"\x1f".join((_UID_NAMESPACE, *(p.encode() for p in (reference, item_code, org_unit))))
    ).digest()
    number = int.from_bytes(digest, "big")
    number, first = divmod(number, len(_UID_FIRST))
    chars = [_UID_FIRST[first]]
    for _ in range(10):
        number, index = divmod(number, len(_UID_REST))
        chars.append(_UID_REST[index])
    return "".join(chars)


def _receipt_quantity(value: object, where: str) -> Decimal:
    """A receipt quantity as a Decimal: a finite number above zero, or InvalidValueError."""
    text = format_value(value, data_element=where)  # type: ignore[arg-type]  # checked inside
    number = Decimal(text)
    if number <= 0:
        raise InvalidValueError(
            f"{where}: quantity {value!r} cannot be sent: a receipt must be greater than zero",
            data_element=where,
            value=repr(value),
        )
    return number


@attrs.frozen(init=False)
class StockReceipt:
    """One item received at one facility, as mSupply confirmed it.

    Attributes:
        org_unit: the facility's org unit UID.
        item_code: the value of the STR program's item-code attribute.
        quantity: the received quantity in the stock card's unit; finite and above zero.
        reference: the consignment (shipment) reference; with the item and org unit it names the
            DHIS2 event, so the same consignment line is never recorded twice.
        occurred_at: when the goods arrived; informational only, the event is dated at push
            time (back-dated events would not correct later balances).

    Raises:
        InvalidValueError: the quantity is not a finite number above zero (the message names
            the receipt).
    """

    org_unit: str
    item_code: str
    quantity: Decimal
    reference: str
    occurred_at: datetime | None = None

    def __init__(
        self,
        org_unit: str,
        item_code: str,
        quantity: Decimal | int | str,
        reference: str,
        occurred_at: datetime | None = None,
    ) -> None:
        where = f"receipt {reference!r} (item {item_code!r} at {org_unit!r})"
        for name, text in (
            ("org_unit", org_unit),
            ("item_code", item_code),
            ("reference", reference),
        ):
            if not isinstance(text, str) or not text.strip():
                raise InvalidValueError(
                    f"{where}: {name} must be a non-empty string, got {text!r}",
                    data_element=where,
                    value=repr(text),
                )
        self.__attrs_init__(
            org_unit, item_code, _receipt_quantity(quantity, where), reference, occurred_at
        )

    @property
    def event_uid(self) -> str:
        """The derived UID of this receipt's event (see :func:`receipt_event_uid`)."""
        return receipt_event_uid(self.reference, self.item_code, self.org_unit)

    def __str__(self) -> str:
        return f"{self.reference}: {_number(self.quantity)} x {self.item_code} at {self.org_unit}"


_PACKING_COLUMNS = ("consignment", "item_code", "quantity")


@attrs.frozen
class PackingList:
    """What each consignment held, as the supplying store shipped it (mSupply's packing list).

    A Receipt-program event only says *that* a facility acknowledged a consignment; the packing
    list says *what* arrived, so together they give the stock receipts to write to the STR
    program (:meth:`stock_receipts_for`).

    Attributes:
        consignments: consignment number -> ((item code, quantity), ...).
    """

    consignments: Mapping[str, tuple[tuple[str, Decimal], ...]]

    @classmethod
    def from_mapping(
        cls, lines: Mapping[str, Iterable[tuple[str, Decimal | int | str]]]
    ) -> PackingList:
        """A packing list from ``{consignment: [(item code, quantity), ...]}``.

        Raises:
            PackingListError: a quantity is not a number.
        """
        consignments: dict[str, tuple[tuple[str, Decimal], ...]] = {}
        for number, items in lines.items():
            consignments[number] = tuple(
                (code, _packed_quantity(quantity, f"consignment {number}, item {code}"))
                for code, quantity in items
            )
        return cls(consignments)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> PackingList:
        """Read a CSV with the columns ``consignment``, ``item_code`` and ``quantity``.

        A UTF-8 byte order mark is accepted; column names ignore case and spaces. Rows of one
        consignment may be anywhere in the file.

        Raises:
            PackingListError: the file cannot be read, a column is missing, or a row lacks a
                value or has a quantity that is not a number (the message gives file and line).
        """
        lines: dict[str, list[tuple[str, Decimal]]] = {}
        try:
            with Path(path).open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                problem = csv_header_problem(path, reader.fieldnames, _PACKING_COLUMNS)
                if problem:
                    raise PackingListError(problem)
                for number, row in enumerate(reader, start=2):
                    cells = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                    consignment, item = cells["consignment"], cells["item_code"]
                    where = f"{path}:{number}"
                    if not consignment or not item:
                        raise PackingListError(f"{where}: consignment and item_code are required")
                    quantity = _packed_quantity(cells["quantity"], where)
                    lines.setdefault(consignment, []).append((item, quantity))
        except OSError as exc:
            raise PackingListError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise PackingListError(
                f"{path} is not UTF-8 text ({exc.reason}): save it as CSV UTF-8"
            ) from exc
        except csv.Error as exc:
            raise PackingListError(f"{path} is not a readable CSV file: {exc}") from exc
        return cls({number: tuple(items) for number, items in lines.items()})

    def __contains__(self, consignment: object) -> bool:
        return consignment in self.consignments

    def __len__(self) -> int:
        return len(self.consignments)

    def items_of(self, consignment: str) -> tuple[tuple[str, Decimal], ...]:
        """The (item code, quantity) lines of ``consignment``; empty when it is not listed."""
        return self.consignments.get(consignment, ())

    def stock_receipts_for(self, receipt: ConsignmentReceipt) -> tuple[StockReceipt, ...]:
        """The stock receipts one acknowledged consignment stands for.

        Raises:
            PackingListError: the receipt has no consignment number or org unit, or its
                consignment is not on the list. A sync handler lets it propagate, so the
                receipt is failed and tried again next run instead of being marked handled.
        """
        number, org_unit = receipt.consignment_number, receipt.org_unit
        where = f"receipt event {receipt.event.uid}"
        if not number:
            raise PackingListError(f"{where} has no consignment number")
        if not org_unit:
            raise PackingListError(f"{where} (consignment {number}) has no org unit")
        if number not in self.consignments:
            raise PackingListError(
                f"consignment {number} ({where}) is not on the packing list; add it and the "
                "next run pushes this receipt"
            )
        return tuple(
            StockReceipt(org_unit, code, quantity, number, occurred_at=receipt.completed_at)
            for code, quantity in self.consignments[number]
        )


def csv_header_problem(
    path: str | os.PathLike[str], fieldnames: Sequence[str] | None, required: Sequence[str]
) -> str | None:
    """What is wrong with a CSV header that lacks ``required`` columns; None when it has them.

    Names ignore case and surrounding spaces. A header that is one cell holding ``;`` or a tab
    is a file saved with another separator (a spreadsheet's regional setting), and the message
    says so, since "missing column" alone would puzzle whoever looks at the file.
    """
    header = [(name or "").strip().lower() for name in fieldnames or ()]
    missing = [column for column in required if column not in header]
    if not missing:
        return None
    text = (
        f"{path}: missing column(s) {', '.join(missing)}; the header row must name "
        f"{', '.join(required)}, separated by commas"
    )
    if not header:
        return text + " (the file is empty)"
    separator = foreign_separator(header)
    if separator is not None:
        text += f" (this file is separated by {separator}: save it as comma-separated CSV)"
    return text


def _packed_quantity(value: object, where: str) -> Decimal:
    try:
        quantity = Decimal(str(value).strip())
    except ArithmeticError:
        quantity = Decimal("NaN")
    if not quantity.is_finite() or quantity <= 0:
        raise PackingListError(f"{where}: quantity {value!r} is not a number above zero")
    return quantity


@attrs.frozen
class StockReceiptOutcome:
    """What happened to one receipt.

    Attributes:
        receipt: the receipt.
        status: ``created`` (written now), ``already_pushed`` (its event existed: nothing was
            written), ``failed`` (not written; ``message`` says why), ``skipped`` (a repeat of
            an earlier receipt in the same push: same reference, item and org unit).
        event_uid: the event's UID (derived from the receipt).
        stock_on_hand_before / stock_on_hand_after: the balance the event builds on and the one
            it records; None when the stock-on-hand data element is not configured or unknown.
        message: why it failed, or a note (DHIS2 warnings, a receipt dated before the latest
            stock event).
        error_code: DHIS2's ``E1xxx`` code of a failure, when it gave one.
    """

    receipt: StockReceipt
    status: OutcomeStatus
    event_uid: str | None = None
    stock_on_hand_before: Decimal | None = None
    stock_on_hand_after: Decimal | None = None
    message: str | None = None
    error_code: str | None = None

    def __str__(self) -> str:
        text = f"{self.status}: {self.receipt}"
        if self.stock_on_hand_after is not None:
            before = _number(self.stock_on_hand_before)
            text += f" (stock on hand {before} -> {_number(self.stock_on_hand_after)})"
        if self.message:
            code = f"{self.error_code} " if self.error_code else ""
            text += f" - {code}{self.message}"
        return text


@attrs.frozen
class StockPushReport:
    """One outcome per receipt, in the order the receipts were given."""

    outcomes: tuple[StockReceiptOutcome, ...]

    def _with(self, status: OutcomeStatus) -> tuple[StockReceiptOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == status)

    @property
    def created(self) -> tuple[StockReceiptOutcome, ...]:
        """Receipts written by this push."""
        return self._with("created")

    @property
    def already_pushed(self) -> tuple[StockReceiptOutcome, ...]:
        """Receipts whose event existed already (nothing written)."""
        return self._with("already_pushed")

    @property
    def failed(self) -> tuple[StockReceiptOutcome, ...]:
        """Receipts not written; push them again once the cause is fixed."""
        return self._with("failed")

    @property
    def skipped(self) -> tuple[StockReceiptOutcome, ...]:
        """Repeats of an earlier receipt in the same push."""
        return self._with("skipped")

    @property
    def ok(self) -> bool:
        """True when no receipt failed: every one is in DHIS2 exactly once."""
        return not self.failed

    def __iter__(self) -> Iterator[StockReceiptOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def __str__(self) -> str:
        counts = ", ".join(
            f"{len(self._with(s))} {s.replace('_', ' ')}"
            for s in ("created", "already_pushed", "failed", "skipped")
        )
        text = f"{len(self.outcomes)} stock receipts: {counts}"
        problems = [o for o in self.outcomes if o.status == "failed" or o.message]
        return text + "".join(f"\n  - {o}" for o in problems)

    def __repr__(self) -> str:
        return f"<StockPushReport {str(self).splitlines()[0]}>"

    def _repr_html_(self) -> str:
        def stock(o: StockReceiptOutcome) -> str:
            if o.stock_on_hand_after is None:
                return ""
            return f"{_number(o.stock_on_hand_before)} → {_number(o.stock_on_hand_after)}"

        return _html.table(
            (
                "status",
                "reference",
                "item",
                "org unit",
                "quantity",
                "stock on hand",
                "event",
                "message",
            ),
            (
                (
                    o.status,
                    o.receipt.reference,
                    o.receipt.item_code,
                    o.receipt.org_unit,
                    _number(o.receipt.quantity),
                    stock(o),
                    o.event_uid,
                    " ".join(p for p in (o.error_code, o.message) if p),
                )
                for o in self.outcomes
            ),
        )


def _number(value: Decimal | None) -> str:
    return "?" if value is None else format_value(value, data_element="stock")


def _naive(value: datetime | None) -> datetime:
    if value is None:
        return datetime.min
    return value.replace(tzinfo=None) if value.tzinfo is not None else value


def _server_local(value: datetime, time_zone: tzinfo | None) -> datetime:
    """``value`` as naive server-local time; an aware value with an unknown server zone is
    taken to this machine's zone (the best guess, and never UTC hours ahead of the server)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(time_zone).replace(tzinfo=None)


@attrs.frozen
class _Card:
    """A resolved stock card: the tracked entity and its ACTIVE enrollment in the program."""

    tracked_entity: str
    enrollment: str


@attrs.frozen
class _Balance:
    """The stock on hand a card's next event builds on, and the event it came from."""

    stock_on_hand: Decimal
    event: Event | None


@attrs.frozen
class _Planned:
    """A receipt ready to write."""

    index: int
    receipt: StockReceipt
    card: _Card
    before: Decimal | None
    after: Decimal | None
    note: str | None


@attrs.frozen(kw_only=True)
class StrSettings:
    """Where STR (Real-Time Stock) data lives in DHIS2: one record for reading and for writing.

    Built once from the configuration (``programs.str`` and the ``[data_elements]`` rows) and
    handed to both the STR reader and the :class:`StockPusher`, so the two never disagree on
    which program, stage or data element holds stock.

    Args:
        program: the STR tracker program UID; None when not configured.
        stage: the program stage receipt events go in.
        stock_on_hand: the stock-on-hand data element; None when that row is inactive.
        received_quantity: the stock-receipt data element; None when that row is inactive.
        item_code_attribute: the tracked entity attribute holding the item code.
    """

    program: str | None
    stage: str | None = None
    stock_on_hand: str | None = None
    received_quantity: str | None = None
    item_code_attribute: str | None = None

    def program_uid(self) -> str:
        """The STR program UID.

        Raises:
            ConfigError: ``programs.str`` is not set.
        """
        if not self.program:
            raise ConfigError("programs.str is not set: configure the str program UID")
        return self.program


@attrs.define
class StockPusher:
    """Writes stock receipts to the STR program, once each, with the stock on hand carried on.

    Args:
        session: the connection.
        settings: the STR program, stage, data elements and item-code attribute; the stage
            and attribute must be set. Without a stock-on-hand data element no balance is
            read or written.
        now: the clock; events are dated by it (naive = server-local time).
        sleep: waits between polls of an import job (only when a server answers a synchronous
            import with a job).
        poll_attempts / poll_interval_s: how long to wait for such a job.
    """

    session: Dhis2Session
    settings: StrSettings = attrs.field(kw_only=True)
    now: Callable[[], datetime] = attrs.field(kw_only=True, default=utc_now)
    sleep: Callable[[float], None] = attrs.field(kw_only=True, default=time.sleep, repr=False)
    poll_attempts: int = attrs.field(kw_only=True, default=60)
    poll_interval_s: float = attrs.field(kw_only=True, default=1.0)
    # the settings' required parts, checked once when the pusher is made
    program: str = attrs.field(init=False)
    program_stage: str = attrs.field(init=False)
    item_code_attribute: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        """Refuse settings a push cannot work with, before anything is sent.

        Raises:
            ConfigError: the STR program, stage or item-code attribute is not configured.
        """
        settings = self.settings
        self.program = settings.program_uid()
        if not settings.stage or not settings.item_code_attribute:
            raise ConfigError(
                "data_elements: the STR push needs program_stage and attribute (the item-code "
                "tracked entity attribute) on the received_quantity or stock_on_hand row"
            )
        self.program_stage = settings.stage
        self.item_code_attribute = settings.item_code_attribute

    @property
    def stock_on_hand(self) -> str | None:
        """The stock-on-hand data element (None: no balance is read or written)."""
        return self.settings.stock_on_hand

    @property
    def received_quantity(self) -> str | None:
        """The stock-receipt data element (None: no quantity is written)."""
        return self.settings.received_quantity

    def push(self, receipts: Iterable[StockReceipt]) -> StockPushReport:
        """Write each receipt once, as a COMPLETED event with the carried-on stock on hand.

        For every receipt: its derived event is looked for first (present: ``already_pushed``);
        the item's tracked entity at the org unit and its ACTIVE enrollment are found (missing:
        ``failed``); the latest stock on hand is read from the newest event (by event date,
        then creation time) that has one, 0 when none; the event is written dated now with
        ``received_quantity = q`` and ``stock_on_hand = latest + q``. Several receipts for one
        item chain: each builds on the previous one, and they are written in rounds so a
        refused receipt never leaves a later balance built on it.

        Returns:
            One outcome per receipt, in input order.

        Raises:
            ConfigError: legacy writes were asked of DHIS2 2.42+, where ``/api/events`` is gone.
            Dhis2Error: from the session (network, authentication, permissions, 5xx). Nothing
                that raised is reported as written; pushing again is safe, and reports what did
                land as ``already_pushed``.
            Dhis2TimeoutError: an import job did not finish within the polling budget.
        """
        batch = tuple(receipts)
        if not batch:
            return StockPushReport(())
        dialect = self.session.dialect  # legacy_events: reads and writes via /api/events
        outcomes: list[StockReceiptOutcome | None] = [None] * len(batch)

        first_of_uid: dict[str, int] = {}
        for i, receipt in enumerate(batch):
            uid = receipt.event_uid
            if uid in first_of_uid:
                outcomes[i] = StockReceiptOutcome(
                    receipt,
                    "skipped",
                    uid,
                    message=f"repeats receipt #{first_of_uid[uid] + 1} of this push "
                    "(same reference, item and org unit)",
                )
            else:
                first_of_uid[uid] = i

        existing = self._existing_events(list(first_of_uid), dialect)
        for uid, i in first_of_uid.items():
            if uid in existing:
                outcomes[i] = self._already_pushed(batch[i], existing[uid])

        pending = [i for i in first_of_uid.values() if outcomes[i] is None]
        cards = self._find_cards(
            {(batch[i].org_unit, batch[i].item_code) for i in pending}, dialect
        )
        by_card: dict[_Card, list[int]] = defaultdict(list)
        for i in pending:
            found = cards[(batch[i].org_unit, batch[i].item_code)]
            if isinstance(found, str):
                outcomes[i] = StockReceiptOutcome(
                    batch[i], "failed", batch[i].event_uid, message=found
                )
            else:
                by_card[found].append(i)

        plans: dict[_Card, list[_Planned]] = {}
        now = _server_local(self.now(), self.session.time_zone)
        for card, indexes in by_card.items():
            balance: _Balance | str | None = None
            if self.stock_on_hand is not None:
                balance = self._latest_balance(card, dialect)
            if isinstance(balance, str):
                for i in indexes:
                    outcomes[i] = StockReceiptOutcome(
                        batch[i], "failed", batch[i].event_uid, message=balance
                    )
                continue
            plans[card] = self._plan(card, indexes, batch, balance, now)

        rounds = max((len(p) for p in plans.values()), default=0)
        broken: dict[_Card, StockReceiptOutcome] = {}
        for step in range(rounds):
            this_round: list[_Planned] = []
            for card, planned in plans.items():
                if step >= len(planned):
                    continue
                plan = planned[step]
                if card in broken:
                    cause = broken[card]
                    outcomes[plan.index] = StockReceiptOutcome(
                        plan.receipt,
                        "failed",
                        plan.receipt.event_uid,
                        message=f"not sent: receipt {cause.receipt.reference} of the same item "
                        "failed earlier in this push, so this balance would be wrong; push again",
                    )
                    continue
                this_round.append(plan)
            for plan, outcome in self._write(this_round, dialect, now, step):
                outcomes[plan.index] = outcome
                if outcome.status == "failed":
                    broken[plan.card] = outcome

        report = StockPushReport(tuple(o for o in outcomes if o is not None))
        assert len(report.outcomes) == len(batch)  # every receipt got exactly one outcome
        log.info("stock receipts pushed: %s", str(report).split("\n", 1)[0])
        return report

    # -- look-ups --------------------------------------------------------------------------------

    def _existing_events(self, uids: Sequence[str], dialect: Dialect) -> dict[str, Event]:
        """Events that already carry one of the derived UIDs (deleted ones included)."""
        found: dict[str, Event] = {}
        time_zone = self.session.time_zone
        fixed: dict[str, ParamValue] = {
            "program": self.program,
            dialect.org_unit_mode_param: "ACCESSIBLE",
            INCLUDE_DELETED_PARAM: True,
            "fields": dialect.event_value_fields,
        }
        chunks = self.session.batches(
            dialect.events_path,
            fixed,
            uids,
            lambda group: dict([dialect.event_uids(group)]),
            max_count=_UIDS_PER_REQUEST,
            page_size=_UIDS_PER_REQUEST + 1,
        )
        for chunk in chunks:
            for page in self.session.iter_pages(
                dialect.events_path,
                {**fixed, **dict([dialect.event_uids(chunk)])},
                items_key=dialect.events_keys[0],
                page_size=len(chunk) + 1,  # a short page: no second request to learn the end
                link_paging=dialect.next_page_link,
            ):
                for raw in page.items:
                    event = structure_event(raw, time_zone)
                    if event.uid in chunk:
                        found[event.uid] = event
        return found

    def _already_pushed(self, receipt: StockReceipt, event: Event) -> StockReceiptOutcome:
        if event.deleted:
            return StockReceiptOutcome(
                receipt,
                "failed",
                event.uid,
                message=f"this receipt's event {event.uid} was pushed before and then deleted "
                "in DHIS2; a deleted UID cannot be used again (E1082): record it by hand",
                error_code="E1082",
            )
        after = _decimal(event.value(self.stock_on_hand)) if self.stock_on_hand else None
        received = _decimal(event.value(self.received_quantity)) if self.received_quantity else None
        before = after - received if after is not None and received is not None else None
        note = None
        if received is not None and received != receipt.quantity:
            # Same reference, other quantity: a correction would never land silently.
            note = (
                f"DHIS2 already holds this receipt with quantity {_number(received)}, not "
                f"{_number(receipt.quantity)}; correct it in DHIS2 or push the difference "
                "under a new reference"
            )
            log.warning("stock receipt %s: %s", receipt.reference, note)
        return StockReceiptOutcome(
            receipt,
            "already_pushed",
            event.uid,
            stock_on_hand_before=before,
            stock_on_hand_after=after,
            message=note,
        )

    def _find_cards(
        self, wanted: set[tuple[str, str]], dialect: Dialect
    ) -> dict[tuple[str, str], _Card | str]:
        """Each (org unit, item code) -> its card, or why there is none (a sentence)."""
        codes_by_unit: dict[str, set[str]] = defaultdict(set)
        for org_unit, code in wanted:
            codes_by_unit[org_unit].add(code)
        result: dict[tuple[str, str], _Card | str] = {}
        for org_unit in sorted(codes_by_unit):
            entities: dict[str, list[TrackedEntityRef]] = defaultdict(list)
            for chunk in self._code_chunks(org_unit, sorted(codes_by_unit[org_unit]), dialect):
                for entity in self._tracked_entities(org_unit, chunk, dialect):
                    found = entity.attributes.get(self.item_code_attribute)
                    if found in chunk and entity.org_unit in (None, org_unit):
                        entities[found].append(entity)
            for code in codes_by_unit[org_unit]:
                result[(org_unit, code)] = self._card(org_unit, code, entities.get(code, []))
        return result

    def _card(self, org_unit: str, code: str, entities: list[TrackedEntityRef]) -> _Card | str:
        where = f"item code {code} at org unit {org_unit} in program {self.program}"
        if not entities:
            return f"no tracked entity with {where}"
        active = [
            _Card(entity.uid, enrollment.uid)
            for entity in entities
            for enrollment in entity.enrollments
            if enrollment.status == "ACTIVE" and enrollment.program in (None, self.program)
        ]
        if not active:
            names = ", ".join(e.uid for e in entities)
            return f"no ACTIVE enrollment for the tracked entity ({names}) with {where}"
        if len(active) > 1:
            names = ", ".join(f"{c.tracked_entity}/{c.enrollment}" for c in active)
            return f"several ACTIVE enrollments ({names}) with {where}: keep only one"
        return active[0]

    def _lookup_params(
        self, org_unit: str, codes: Sequence[str], dialect: Dialect
    ) -> dict[str, ParamValue]:
        name, value = dialect.attribute_in(self.item_code_attribute, codes)
        return {
            "program": self.program,
            dialect.org_units_param: org_unit,
            "fields": dialect.tracked_entity_fields,
            name: value,
        }

    def _code_chunks(
        self, org_unit: str, codes: Sequence[str], dialect: Dialect
    ) -> list[list[str]]:
        """Item codes in groups whose look-up URL stays within the session's URL budget."""
        return self.session.batches(
            dialect.tracked_entities_path,
            self._lookup_params(org_unit, [], dialect),
            codes,
            lambda group: dict([dialect.attribute_in(self.item_code_attribute, group)]),
            page_size=max(50, 2 * len(codes)),
        )

    def _tracked_entities(
        self, org_unit: str, codes: Sequence[str], dialect: Dialect
    ) -> Iterator[TrackedEntityRef]:
        params = self._lookup_params(org_unit, codes, dialect)
        # A code is unique per org unit, so a page this large is never full: one request.
        return iter_tracked_entities(self.session, params, page_size=max(50, 2 * len(codes)))

    def _latest_balance(self, card: _Card, dialect: Dialect) -> _Balance | str:
        """The stock on hand of the card's newest event that has one (0 when none has)."""
        soh_element = self.stock_on_hand
        assert soh_element is not None  # only asked when the row is active
        params: dict[str, ParamValue] = {
            "program": self.program,
            dialect.tracked_entity_param: card.tracked_entity,
            dialect.org_unit_mode_param: "ACCESSIBLE",
            "order": dialect.order_newest,
            "fields": dialect.event_value_fields,
        }
        time_zone = self.session.time_zone
        best: Event | None = None
        for page in self.session.iter_pages(
            dialect.events_path,
            params,
            items_key=dialect.events_keys[0],
            page_size=_SOH_PAGE_SIZE,
            link_paging=dialect.next_page_link,
        ):
            for raw in page.items:
                event = structure_event(raw, time_zone)
                value = event.value(soh_element)
                if event.deleted or value is None or not value.strip():
                    continue
                # the server's order is a hint; the newest is decided here
                if best is None or event.recency() > best.recency():
                    best = event
            if best is not None:
                break
        if best is None:
            return _Balance(Decimal(0), None)
        raw_value = best.value(soh_element)
        stock = _decimal(raw_value)
        if stock is None:
            return (
                f"the latest stock on hand of tracked entity {card.tracked_entity} (event "
                f"{best.uid}, data element {soh_element}) is not a number: {raw_value!r}"
            )
        return _Balance(stock, best)

    # -- writing ---------------------------------------------------------------------------------

    def _plan(
        self,
        card: _Card,
        indexes: Sequence[int],
        batch: Sequence[StockReceipt],
        balance: _Balance | None,
        now: datetime,
    ) -> list[_Planned]:
        running = balance.stock_on_hand if balance is not None else None
        latest = balance.event if balance is not None else None
        latest_at = _naive(latest.occurred_at) if latest is not None else None
        time_zone = self.session.time_zone
        planned = []
        for i in indexes:
            receipt = batch[i]
            notes = []
            if latest_at is not None and latest is not None:
                if receipt.occurred_at is not None:
                    received_at = _server_local(receipt.occurred_at, time_zone)
                    if received_at < latest_at:
                        notes.append(
                            f"received {received_at.isoformat(timespec='seconds')}, before the "
                            f"latest stock event {latest.uid} "
                            f"({latest_at.isoformat(timespec='seconds')}); recorded now, "
                            "not back-dated"
                        )
                if now < latest_at:
                    notes.append(
                        f"the latest stock event {latest.uid} is dated in the future "
                        f"({latest_at.isoformat(timespec='seconds')}); until then it stays the "
                        "latest for DHIS2 and the stock app"
                    )
            after = running + receipt.quantity if running is not None else None
            planned.append(_Planned(i, receipt, card, running, after, "; ".join(notes) or None))
            running = after
        for plan in planned:
            if plan.note:
                log.warning("stock receipt %s: %s", plan.receipt, plan.note)
        return planned

    def _data_values(self, plan: _Planned) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.received_quantity is not None:
            values[self.received_quantity] = format_value(
                plan.receipt.quantity, data_element=self.received_quantity
            )
        if self.stock_on_hand is not None and plan.after is not None:
            values[self.stock_on_hand] = format_value(plan.after, data_element=self.stock_on_hand)
        return values

    def _write(
        self, plans: Sequence[_Planned], dialect: Dialect, now: datetime, step: int
    ) -> list[tuple[_Planned, StockReceiptOutcome]]:
        """Send one round (at most one event per card) and map the report back to receipts."""
        if not plans:
            return []
        # Later rounds are dated a millisecond on, so their order never rests on createdAt.
        occurred = format_timestamp(now + timedelta(milliseconds=step))
        payload = events_payload(
            event_payload(
                event=plan.receipt.event_uid,
                program=self.program,
                program_stage=self.program_stage,
                org_unit=plan.receipt.org_unit,
                enrollment=plan.card.enrollment,
                tracked_entity=plan.card.tracked_entity,
                occurred_at=occurred,
                data_values=self._data_values(plan),
                legacy=dialect.legacy_events,
            )
            for plan in plans
        )
        report = self._send(payload, dialect)
        return self._map_report(plans, report)

    def _send(self, payload: JsonObject, dialect: Dialect) -> TrackerImportReport:
        response = self.session.post_json(
            dialect.event_write_path,
            payload,
            params=dict(dialect.event_write_params),
            idempotent=True,  # client UIDs + CREATE_AND_UPDATE: a repeat updates, never adds
            accept_status=(409,),
        )
        if dialect.legacy_events:
            return parse_legacy_event_summaries(response.body)
        body = response.body
        location = job_location(body)
        if location is not None:
            log.warning("DHIS2 queued the synchronous stock import as job %s; polling", location)
            body = self._await_job(location)
        return parse_tracker_report(body)

    def _await_job(self, location: str) -> JsonValue:
        """Poll ``tracker/jobs/{id}`` until done, then return its report (404 until ready)."""
        for attempt in range(self.poll_attempts):
            if attempt:
                self.sleep(self.poll_interval_s)
            if not job_completed(self.session.get_json(location)):
                continue
            try:
                return self.session.get_json(f"{location}/report", JOB_REPORT_PARAMS)
            except NotFoundError:
                continue  # the report is written just after the last notification
        raise Dhis2TimeoutError(
            f"the stock import job did not finish after {self.poll_attempts} polls; pushing "
            "again is safe (existing events are reported as already pushed)",
            method="GET",
            path=location,
        )

    def _map_report(
        self, plans: Sequence[_Planned], report: TrackerImportReport
    ) -> list[tuple[_Planned, StockReceiptOutcome]]:
        uids = {plan.receipt.event_uid for plan in plans}
        errors: dict[str, list[TrackerImportMessage]] = defaultdict(list)
        unnamed: list[TrackerImportMessage] = []
        for error in report.errors:
            if error.uid in uids:
                errors[error.uid].append(error)
            else:
                unnamed.append(error)
        warnings: dict[str, list[str]] = defaultdict(list)
        for warning in report.warnings:
            if warning.uid in uids:
                warnings[warning.uid].append(str(warning))
        named_failures = sum(1 for plan in plans if plan.receipt.event_uid in errors)
        saved = report.created + report.updated
        # When DHIS2 saved fewer events than it did not name, which ones is unknowable:
        # none of the unnamed ones may claim success.
        uncertain = saved < len(plans) - named_failures
        doubt = "; ".join(str(e) for e in unnamed) or (
            f"DHIS2 saved {saved} of {len(plans) - named_failures} events ({report.status})"
        )
        mapped = []
        for plan in plans:
            uid = plan.receipt.event_uid
            if uid in errors:
                first = errors[uid][0]
                outcome = StockReceiptOutcome(
                    plan.receipt,
                    "failed",
                    uid,
                    message="; ".join(e.message for e in errors[uid]),
                    error_code=first.error_code,
                )
            elif uncertain:
                outcome = StockReceiptOutcome(
                    plan.receipt,
                    "failed",
                    uid,
                    message=f"not confirmed: {doubt}; push again (safe: existing events are "
                    "reported as already pushed)",
                    error_code=unnamed[0].error_code if unnamed else None,
                )
            else:
                note = "; ".join(p for p in (plan.note, *warnings.get(uid, ())) if p)
                outcome = StockReceiptOutcome(
                    plan.receipt,
                    "created",
                    uid,
                    stock_on_hand_before=plan.before,
                    stock_on_hand_after=plan.after,
                    message=note or None,
                )
            mapped.append((plan, outcome))
        return mapped


def _decimal(raw: str | None) -> Decimal | None:
    if raw is None:
        return None
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
