"""Dhis2Lmis: the facade that wires everything from one :class:`~dhis2_lmis.config.Dhis2Config`.

It holds no logic of its own beyond choosing parts from the configuration: the session and its
authentication, the item and org-unit resolvers, one reader per program (order, receipt, STR)
and one of the stock data set, the data value builder and the stock pusher. Each method says
which part does the work, so a caller who needs only one piece can use that piece directly.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from types import TracebackType
from typing import Literal

from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2._clock import Clock, utc_now
from dhis2_lmis.dhis2.auth import BasicAuth, BodyAuth, Dhis2Auth, TokenAuth
from dhis2_lmis.dhis2.convert import ME_FIELDS, current_username
from dhis2_lmis.dhis2.imports import ImportSummary
from dhis2_lmis.dhis2.periods import format_period, parse_period
from dhis2_lmis.dhis2.records import ConnectionCheck, Event
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.errors import (
    AuthenticationError,
    ConfigError,
    Dhis2ConnectionError,
    Dhis2Error,
    UnknownReferenceError,
)
from dhis2_lmis.lmis import checks
from dhis2_lmis.lmis._progress import with_progress
from dhis2_lmis.lmis.datavalues import (
    DataValueSetBuilder,
    ImportStrategy,
    ItemValueSetBuilder,
    NumberLike,
    push_data_value_set,
)
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Customer,
    Item,
    Requisition,
    StockLevel,
    StockReport,
    StockTransaction,
    Store,
)
from dhis2_lmis.lmis.programs import (
    OrderReader,
    ProgramKey,
    ReceiptReader,
    StrReader,
)
from dhis2_lmis.lmis.references import ItemResolver, LayoutResolver, OrgUnitResolver
from dhis2_lmis.lmis.reports import PeriodSpec, StockReportReader
from dhis2_lmis.lmis.stock import StockPusher, StockPushReport, StockReceipt, StrSettings

__all__ = ["Dhis2Lmis"]

log = logging.getLogger(__name__)


class Dhis2Lmis:
    """The DHIS2 half of an LMIS bridge, configured like mSupply's "DHIS2 LMIS" page.

    Args:
        config: the validated configuration.
        items: mSupply items, for mapping data elements to items (and back for pushes).
        stores: supplying stores; their ``store_field`` custom field holds the org unit.
        customers: requesting facilities (mSupply names); ``name_field`` holds the org unit.
        session: an existing session to use instead of one built from ``config.dhis2``.
        on_connection: called as ``on_connection(checked_at, server_version)`` after each
            successful :meth:`test_connection`: the aware UTC time of the check and the
            version string DHIS2 reported (the sync's state store records both).
        now: the clock the connection check is stamped by.

    Example:
        >>> lmis = Dhis2Lmis(Dhis2Config.from_file("dhis2-lmis.toml"))  # doctest: +SKIP
        >>> for requisition in lmis.fetch_completed_requisitions():  # doctest: +SKIP
        ...     print(requisition.org_unit, len(requisition.lines))
    """

    def __init__(
        self,
        config: Dhis2Config,
        *,
        items: Iterable[Item] = (),
        stores: Iterable[Store] = (),
        customers: Iterable[Customer] = (),
        session: Dhis2Session | None = None,
        on_connection: Callable[[datetime, str], None] | None = None,
        now: Clock = utc_now,
    ) -> None:
        self.config = config
        self.session = session or _session_from(config)
        self.on_connection = on_connection
        self._now = now
        self.last_successful_connection: datetime | None = None
        items, stores, customers = tuple(items), tuple(stores), tuple(customers)
        lmis = config.lmis
        self.items: ItemResolver | None = None
        if items:
            self.items = ItemResolver(
                items,
                item_field=lmis.item_field,
                id_scheme=lmis.data_element_id_scheme,
                session=self.session,
            )
        self.org_units: OrgUnitResolver | None = None
        if stores or customers:
            self.org_units = OrgUnitResolver(
                stores,
                customers,
                store_field=lmis.store_field,
                name_field=lmis.name_field,
                id_scheme=lmis.org_unit_id_scheme,
                session=self.session,
            )
        #: Places items' measures in the data set; None without a ``[data_set]`` section.
        self.layout: LayoutResolver | None = None
        if config.data_set.configured:
            self.layout = LayoutResolver(
                config.data_set, self.items or self._no_items(), session=self.session
            )
        page_size = config.sync.page_size
        #: Reads the Order program, per ``programs.order`` and the ``[order]`` section.
        self.order_reader = OrderReader(
            self.session,
            program=config.programs.order,
            items=self.items,
            org_units=self.org_units,
            data_element_id_scheme=lmis.data_element_id_scheme,
            item_data_element=config.order.item_data_element,
            quantity_data_element=config.order.quantity_data_element,
            page_size=page_size,
        )
        #: Reads the Receipt program, per ``programs.receipt`` and the ``[receipt]`` section.
        self.receipt_reader = ReceiptReader(
            self.session,
            program=config.programs.receipt,
            org_units=self.org_units,
            consignment_data_element=config.receipt.consignment_data_element,
            page_size=page_size,
        )
        #: Where STR data lives; shared by :attr:`str_reader` and the stock pusher.
        self.str_settings = _str_settings(config)
        #: Reads the STR program, per :attr:`str_settings`.
        self.str_reader = StrReader(
            self.session, settings=self.str_settings, org_units=self.org_units, page_size=page_size
        )

    def __repr__(self) -> str:
        return f"Dhis2Lmis(url={self.session.url!r}, enabled={self.config.enabled})"

    def __enter__(self) -> Dhis2Lmis:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    # -- "Test connection" -------------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        """Check URL and credentials; never raises for network or authentication trouble."""
        checked_at = self._now()
        if not self.config.enabled:
            return ConnectionCheck(False, "DHIS2 integration is disabled", None, checked_at)
        try:
            me = self.session.get_json("me", {"fields": ME_FIELDS})
            version = str(self.session.version)
        except AuthenticationError as exc:
            return ConnectionCheck(False, f"Authentication failed: {exc}", None, checked_at)
        except Dhis2ConnectionError as exc:
            return ConnectionCheck(False, f"Could not connect: {exc}", None, checked_at)
        except Dhis2Error as exc:
            return ConnectionCheck(False, f"Connection failed: {exc}", None, checked_at)
        user = current_username(me)
        self.last_successful_connection = checked_at
        if self.on_connection is not None:
            self.on_connection(checked_at, version)
        who = f", user {user}" if user else ""
        return ConnectionCheck(
            True, f"Connection successful (DHIS2 {version}{who})", version, checked_at, user
        )

    # -- orders and receipts in --------------------------------------------------------------------

    def fetch_completed_requisitions(
        self,
        *,
        since: datetime | None = None,
        org_unit: str | None = None,
        progress: bool = False,
        workers: int = 1,
    ) -> Iterator[Requisition]:
        """Completed Order-program events as requisitions, lazily, oldest update first.

        ``since`` filters on ``updatedAt``, so a re-opened and re-completed event comes back.
        ``progress`` counts them on a tqdm bar when tqdm is installed (the ``notebook`` extra).
        ``workers`` above 1 reads that many pages at once, for backfills: the same records,
        each once, in no overall order (docs/performance.md#parallel-reads). Close the
        iterator (or let a ``for`` loop end) to stop its threads early.
        """
        records = self.order_reader.completed_requisitions(
            since=since, org_unit=org_unit, workers=workers
        )
        return with_progress(records, desc="requisitions", enabled=progress)

    def fetch_completed_receipts(
        self,
        *,
        since: datetime | None = None,
        org_unit: str | None = None,
        progress: bool = False,
        workers: int = 1,
    ) -> Iterator[ConsignmentReceipt]:
        """Completed Receipt-program events (consignment acknowledgements).

        ``workers``: as in :meth:`fetch_completed_requisitions`.
        """
        records = self.receipt_reader.completed_receipts(
            since=since, org_unit=org_unit, workers=workers
        )
        return with_progress(records, desc="receipts", enabled=progress)

    def fetch_stock_transactions(
        self,
        *,
        since: datetime | None = None,
        org_unit: str | None = None,
        progress: bool = False,
        workers: int = 1,
    ) -> Iterator[StockTransaction]:
        """STR (Real-Time Stock) events with their item codes and quantities.

        ``workers``: as in :meth:`fetch_completed_requisitions`.
        """
        records = self.str_reader.stock_transactions(
            since=since, org_unit=org_unit, workers=workers
        )
        return with_progress(records, desc="stock transactions", enabled=progress)

    def fetch_stock_on_hand(
        self, *, org_unit: str | None = None, progress: bool = False
    ) -> Iterator[StockLevel]:
        """ "RTS SOH raw data": the latest stock on hand per (org unit, item).

        Raises:
            ConfigError: ``[data_elements.stock_on_hand]`` is not configured (without it every
                answer would be empty, which reads as "no stock").
        """
        if self.str_settings.stock_on_hand is None:
            raise ConfigError(
                "data_elements.stock_on_hand is not configured: set its data_element, "
                "program_stage and attribute to read stock on hand"
            )
        records = self.str_reader.stock_on_hand_levels(org_unit=org_unit)
        return with_progress(records, desc="stock levels", enabled=progress)

    def fetch_stock_reports(
        self,
        period: PeriodSpec,
        *,
        org_unit: str | None = None,
        children: bool = False,
        since: datetime | None = None,
        progress: bool = False,
    ) -> Iterator[StockReport]:
        """Stock-on-hand reports of the ``[lmis] data_set``, one per facility and period, lazily.

        ``period`` is a date (formatted with ``period_format``), a period id or a ``(start,
        end)`` date range; ``org_unit`` a UID or code (per ``org_unit_id_scheme``), or None for
        every org unit of the data set below the user's roots; ``since`` reads only values
        updated since then. Large reads are split by org unit batch and period. Unknown items
        or org units and non-numeric values are problems on the report, never exceptions.
        ``progress`` counts reports on a tqdm bar when tqdm is installed.
        The work is done by the client's one :attr:`stock_report_reader`.

        Raises:
            ConfigError: ``[lmis] data_set`` is not set.
            PeriodError: ``period`` is not a valid period, or not of the data set's type.
            UnknownReferenceError: ``org_unit`` is a code no org unit has.
            Dhis2Error: a request failed.
        """
        reports = self.stock_report_reader.read(period, org_unit, children=children, since=since)
        return with_progress(reports, desc="stock reports", enabled=progress)

    @functools.cached_property
    def stock_report_reader(self) -> StockReportReader:
        """Reads the stock data set, per the ``[lmis]`` section (``data_set``, ``period_format``,
        id schemes); built on first use, as the data set is optional, then shared by every
        :meth:`fetch_stock_reports`. Its look-up memo lives for one read only.

        Raises:
            ConfigError: ``[lmis] data_set`` is not set (on every use until it is).
        """
        lmis = self.config.lmis
        return StockReportReader(
            self.session,
            data_set=lmis.data_set or "",
            period_format=lmis.period_format,
            data_element_id_scheme=lmis.data_element_id_scheme,
            org_unit_id_scheme=lmis.org_unit_id_scheme,
            items=self.items,
            org_units=self.org_units,
            layout=self.layout,
        )

    def pull(
        self,
        program: ProgramKey,
        *,
        since: datetime | None = None,
        org_unit: str | None = None,
        progress: bool = False,
        workers: int = 1,
    ) -> Iterator[Event]:
        """The manual pull of one program ("order", "receipt" or "str"): raw events.

        ``workers``: as in :meth:`fetch_completed_requisitions`.
        """
        readers = {
            "order": self.order_reader,
            "receipt": self.receipt_reader,
            "str": self.str_reader,
        }
        reader = readers.get(program)
        if reader is None:
            raise ConfigError(f"unknown program {program!r}: use order, receipt or str")
        events = reader.pull(since=since, org_unit=org_unit, workers=workers)
        return with_progress(events, desc=f"{program} events", enabled=progress)

    # -- stock out ---------------------------------------------------------------------------------

    def data_value_set(
        self,
        period: date | str,
        org_unit: str | None = None,
        *,
        store: Store | Customer | None = None,
        complete_date: date | str | None = None,
        attribute_option_combo: str | None = None,
    ) -> ItemValueSetBuilder:
        """A builder preset with the configured data set, period format and rounding.

        Add values by data element (``add``, or ``add_rows`` for many) or by mSupply item
        (``add_item``: the data element comes from the item's reference, or with a
        ``[data_set]`` layout from the item and ``measure=``; items not included in the DHIS2
        push are skipped and listed in ``skipped``).

        Args:
            period: a date (formatted with ``period_format``) or a DHIS2 period id.
            org_unit: the org unit; or give ``store`` to use its ``Dhis2Code`` field.
            store: a store or customer whose configured field holds the org unit.
            attribute_option_combo: the attribute option combo (UID) of every value unless a
                value names its own; None is DHIS2's default combo.

        Raises:
            UnknownReferenceError: the store's org-unit field is empty.
            PeriodError: ``period`` is not a valid period id.
        """
        if isinstance(period, date):
            period_id = format_period(period, self.config.lmis.period_format)
        else:
            period_id = parse_period(period).id
        if org_unit is None and store is not None:
            org_unit = self._org_unit_of(store)
        lmis = self.config.lmis
        return ItemValueSetBuilder(
            lmis.data_set,
            period_id,
            org_unit,
            items=self.items or self._no_items(),
            layout=self.layout,
            attribute_option_combo=attribute_option_combo,
            round_off=lmis.round_off,
            complete_date=complete_date,
        )

    def stock_value_set(
        self,
        period: date | str,
        org_unit: str | None = None,
        *,
        store: Store | Customer | None = None,
        values: Mapping[Item, Mapping[str, NumberLike]],
        complete_date: date | str | None = None,
    ) -> ItemValueSetBuilder:
        """A store's stock for a period, laid out by the ``[data_set]`` section, ready to push.

        ``values`` maps each item to its measures, ``{item: {"stock_on_hand": 610,
        "received_quantity": 500}}``; the layout places each in its data element and category
        option combo (docs/layouts.md), with the configured rounding. Items not included in
        the DHIS2 push and measures the layout cannot place are listed in the builder's
        ``skipped``, values that cannot be sent in its ``rejected`` (a push with ``preflight``
        then sends nothing); push it with :meth:`push_data_values`.

        Raises:
            ConfigError: no ``[data_set]`` layout is configured, or ``values`` names a measure
                it does not have.
            UnknownReferenceError: the store's org-unit field is empty.
            PeriodError: ``period`` is not a valid period id.
            Dhis2Error: the layout's metadata look-up failed.
        """
        if self.layout is None:
            raise ConfigError(
                "stock_value_set needs a data set layout: name the measures in the [data_set] "
                "section (docs/layouts.md)"
            )
        builder = self.data_value_set(period, org_unit, store=store, complete_date=complete_date)
        builder.add_stock(values)
        return builder

    def push_data_values(
        self,
        builder_or_payload: DataValueSetBuilder | Mapping[str, object],
        *,
        dry_run: bool = False,
        import_strategy: ImportStrategy = "CREATE_AND_UPDATE",
        chunk_size: int = 10_000,
        preflight: bool = False,
    ) -> ImportSummary:
        """Push data values; one normalised :class:`ImportSummary` for every DHIS2 version.

        Without ``preflight`` the builder's rows are sent and the rows it refused stay in its
        ``rejected`` list. With ``preflight`` every row is checked first against the data set
        (:class:`~checks.Preflight`) and nothing is sent if any row, refused or checked, would
        be lost (docs/flows.md, "Bad rows").

        Raises:
            ImportFailedError: DHIS2 aborted the import; the error carries the summary.
            PreflightError: ``preflight`` found problems; nothing was sent.
        """
        return push_data_value_set(
            self.session,
            builder_or_payload,  # type: ignore[arg-type]  # a JSON mapping
            dry_run=dry_run,
            import_strategy=import_strategy,
            id_scheme=self.config.lmis.data_element_id_scheme,
            chunk_size=chunk_size,
            preflight=checks.Preflight(self.session, self.config, items=self.items)
            if preflight
            else None,
        )

    def validate_setup(self) -> list[checks.Finding]:
        """Check the configuration against the server's metadata (errors first).

        See :func:`checks.validate_setup`; a 404 on a configured object is a finding.

        Raises:
            Dhis2Error: the server could not be read.
        """
        return checks.validate_setup(
            self.session,
            self.config,
            items=self.items,
            org_units=self.org_units,
            layout=self.layout,
        )

    def push_stock_receipts(self, receipts: Iterable[StockReceipt]) -> StockPushReport:
        """Write received stock to the STR program: one COMPLETED event per receipt, once."""
        return self._stock_pusher().push(receipts)

    # -- internals ---------------------------------------------------------------------------------

    def _stock_pusher(self) -> StockPusher:
        return StockPusher(self.session, settings=self.str_settings)

    def _no_items(self) -> ItemResolver:
        """An empty item resolver with the configured field and scheme."""
        lmis = self.config.lmis
        return ItemResolver((), item_field=lmis.item_field, id_scheme=lmis.data_element_id_scheme)

    def _org_unit_of(self, place: Store | Customer) -> str:
        lmis = self.config.lmis
        places = self.org_units or OrgUnitResolver(
            store_field=lmis.store_field, name_field=lmis.name_field
        )
        org_unit = places.org_unit_for(place)
        if org_unit is None:
            field = (
                self.config.lmis.store_field
                if isinstance(place, Store)
                else self.config.lmis.name_field
            )
            raise UnknownReferenceError(
                f"{type(place).__name__.lower()} {place.code} has no org unit in its "
                f"{field or '(unset)'} field: fill it in mSupply or pass org_unit="
            )
        return org_unit


def _str_settings(config: Dhis2Config) -> StrSettings:
    """The STR settings: ``programs.str`` and the active ``[data_elements]`` rows."""
    table = config.data_elements
    soh, received = table.stock_on_hand, table.received_quantity
    return StrSettings(
        program=config.programs.str,
        stage=received.program_stage or soh.program_stage,
        stock_on_hand=soh.data_element if soh.active else None,
        received_quantity=received.data_element if received.active else None,
        item_code_attribute=soh.attribute or received.attribute,
    )


def _auth_from(config: Dhis2Config) -> Dhis2Auth | None:
    server = config.dhis2
    mode: Literal["basic", "body", "token"] = server.auth
    if mode == "token":
        token = server.resolved_token()
        return TokenAuth(token) if token else None
    password = server.resolved_password()
    if not server.username or password is None:
        return None
    if mode == "body":
        return BodyAuth(
            server.username,
            password,
            client_id=server.client_id,
            client_secret=server.resolved_client_secret(),
            client_auth=server.client_auth,
        )
    return BasicAuth(server.username, password)


def _session_from(config: Dhis2Config) -> Dhis2Session:
    server = config.dhis2
    if server.url is None and server.enabled:
        raise ConfigError("dhis2.url is not set")
    return Dhis2Session(
        server.url or "http://disabled.invalid",
        _auth_from(config),
        timeout=server.timeout,
        connect_timeout=server.connect_timeout,
        retry=RetryPolicy(attempts=server.max_attempts),
        verify=server.verify_tls,
        enabled=server.enabled,
        legacy_events=server.tracker_api == "legacy",
    )
