"""Stock-on-hand reports in: the configured aggregate data set, per facility and period.

mSupply "receives the stock on hand reports" of facilities from the aggregate data set named by
``[lmis] data_set`` (LMIS_DOMAIN.md §3.4, §6 F5). They are read with ``GET /api/dataValueSets``
(WEB_API.md §6.6), which has three habits a reader must absorb:

* it is **not paged**: one request answers with every value of every org unit and period it
  names, so a national data set asked for with ``orgUnit=<country>&children=true`` is one
  response of hundreds of thousands of values, slow on the server and held whole in memory on
  both sides. The reader lists the facilities the data set is assigned to under the chosen
  roots and asks for them in batches (repeatable ``orgUnit``, each URL below
  :data:`~dhis2_lmis.dhis2.session.MAX_URL_LENGTH`), one request per batch and period, and turns
  each answer into reports before sending the next;
* it answers in **UIDs** unless told otherwise: the reader asks for ``dataElementIdScheme``,
  ``orgUnitIdScheme`` and ``categoryOptionComboIdScheme``, so a deployment that works in codes
  gets codes back (a data element without a code still comes back as its UID, and is
  translated through the item resolver); attribute option combos stay UIDs, as pushes name
  them;
* its shape varies: the top-level ``period``, ``orgUnit`` and ``completeDate`` appear only
  when the request named one of each (2.28, 2.41 recordings), ``completeDate`` is a date on
  some versions and a timestamp on others, and a request without data answers ``{}`` on some.
  :mod:`dhis2_lmis.dhis2.convert` reads every shape.

Nothing in a report is an exception: an unknown data element, an org unit that maps to no
store or customer, a value that is not a quantity becomes a
:class:`~dhis2_lmis.dhis2.records.RecordProblem` on its report, and the report is yielded anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from typing import Literal, TypeAlias, Union

from dhis2_lmis.dhis2._json import JsonValue
from dhis2_lmis.dhis2._uids import IdScheme
from dhis2_lmis.dhis2.convert import (
    format_timestamp,
    org_unit_refs,
    parse_timestamp,
    timestamp_parser,
)
from dhis2_lmis.dhis2.datavaluesets import (
    PATH,
    DataValueRow,
    data_value_rows,
    data_value_set_header,
    read_params,
    read_query,
)
from dhis2_lmis.dhis2.metadata import DATA_SET_ORG_UNITS_FIELDS, USER_ORG_UNITS_FIELDS
from dhis2_lmis.dhis2.periods import (
    PeriodError,
    format_period,
    parse_period,
    period_for,
    period_type_of_format,
)
from dhis2_lmis.dhis2.records import RecordProblem
from dhis2_lmis.dhis2.session import MAX_URL_LENGTH, Dhis2Session, ParamValue
from dhis2_lmis.errors import ConfigError, UnknownReferenceError
from dhis2_lmis.lmis.models import Customer, Item, StockReport, StockReportLine, Store
from dhis2_lmis.lmis.programs import ItemLookup, OrgUnitLookup, parse_quantity
from dhis2_lmis.lmis.references import LayoutResolver, OrgUnitResolver

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "PeriodSpec",
    "StockReportReader",
]

log = logging.getLogger(__name__)

PeriodSpec: TypeAlias = Union[date, str, tuple[date, date]]  # noqa: UP007 - runtime alias on 3.10
"""A date (formatted with ``period_format``), a period id, or an inclusive ``(start, end)``."""

CategoryOptionComboIdScheme = Literal["UID", "CODE", "NAME"]

DEFAULT_BATCH_SIZE = 50
"""Org units per request when reading many: 50 facilities x 200 items x a few measures is
10,000-40,000 values, a response of a few megabytes that DHIS2 answers in seconds."""


class StockReportReader:
    """Reads the stock data set as one :class:`StockReport` per facility and period.

    Args:
        session: the connection.
        data_set: the data set UID (``[lmis] data_set``).
        period_format: how a date becomes a period id (``[lmis] period_format``): a date
            pattern such as ``YYYYMM`` or a period type name; also the period type a date
            range is enumerated in.
        data_element_id_scheme: the scheme item references use; asked of DHIS2 as
            ``dataElementIdScheme``.
        org_unit_id_scheme: the scheme of the ``org_unit`` argument and of ``report.org_unit``;
            asked of DHIS2 as ``orgUnitIdScheme``.
        category_option_combo_id_scheme: asked of DHIS2 as ``categoryOptionComboIdScheme``
            (default: the data element scheme, so a code deployment sees measure codes; NAME
            gives "Stock on hand").
        items: resolves data elements to mSupply items (None: lines keep ``item = None``).
        org_units: resolves org units to stores and customers (None: both stay None).
        layout: the ``[data_set]`` layout; each line's item and measure then come from its
            data element and category option combo (docs/layouts.md), and a value that
            matches no item or no measure is a problem on its report.
        batch_size: at most this many org units per request.
        max_url_length: no request URL is longer than this.
        time_zone: the zone of DHIS2's offset-less timestamps: ``"server"`` asks the server
            once (``serverTimeZoneId``), None keeps them naive.

    Raises:
        ConfigError: ``data_set`` is empty or ``batch_size`` is below 1.
        PeriodError: ``period_format`` is unknown.
    """

    def __init__(
        self,
        session: Dhis2Session,
        *,
        data_set: str,
        period_format: str,
        data_element_id_scheme: IdScheme,
        org_unit_id_scheme: IdScheme = "UID",
        category_option_combo_id_scheme: CategoryOptionComboIdScheme | None = None,
        items: ItemLookup | None = None,
        org_units: OrgUnitLookup | None = None,
        layout: LayoutResolver | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_url_length: int = MAX_URL_LENGTH,
        time_zone: tzinfo | Literal["server"] | None = "server",
    ) -> None:
        if not data_set:
            raise ConfigError("lmis.data_set is not set: name the stock data set's UID")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.session = session
        self.data_set = data_set
        self.period_format = period_format
        self.period_type = period_type_of_format(period_format)
        self.data_element_id_scheme: IdScheme = data_element_id_scheme
        self.org_unit_id_scheme: IdScheme = org_unit_id_scheme
        self.category_option_combo_id_scheme: CategoryOptionComboIdScheme = (
            category_option_combo_id_scheme or data_element_id_scheme
        )
        self.items = items
        self.org_units = org_units
        self.layout = layout
        self.batch_size = batch_size
        self.max_url_length = max_url_length
        self.time_zone = time_zone

    def __repr__(self) -> str:
        return (
            f"StockReportReader(data_set={self.data_set!r}, period_format="
            f"{self.period_format!r}, batch_size={self.batch_size})"
        )

    # -- public ----------------------------------------------------------------------------------

    def read(
        self,
        period: PeriodSpec,
        org_unit: str | Sequence[str] | None = None,
        *,
        children: bool = False,
        since: datetime | None = None,
    ) -> Iterator[StockReport]:
        """Stock reports of one period (or a range), lazily, one per facility and period.

        Only org units with at least one value in a period get a report for it. Memory holds
        one batch of org units at a time, never the whole tree.

        Args:
            period: a date, formatted with ``period_format``; a period id (``202611``); or an
                inclusive ``(start, end)`` date range, read as every period of the
                ``period_format``'s type from the one holding ``start`` to the one holding
                ``end``, one period per request. (``startDate``/``endDate`` are not used: they
                would also match periods of other types and make one unbounded request.)
            org_unit: a UID, or a code when ``org_unit_id_scheme`` is CODE, or several; None
                reads every org unit the data set is assigned to below the user's data
                capture roots.
            children: with ``org_unit``, read the data set's org units below it too.
            since: only values updated at or after this time (``lastUpdated``), for
                incremental reads.

        Raises:
            PeriodError: ``period`` is not a valid period id, is one of another period type
                than ``period_format``'s, or the range is reversed (raised at once, before
                any request).
            UnknownReferenceError: ``org_unit`` holds a code no org unit has.
            Dhis2Error: a request failed (see :meth:`Dhis2Session.request`).
        """
        periods = self.periods(period)
        refs = None
        if org_unit is not None:
            refs = (org_unit,) if isinstance(org_unit, str) else tuple(org_unit)
        return self._read(periods, refs, children=children, since=since)

    def reports_of(self, body: JsonValue, period: str | None = None) -> Iterator[StockReport]:
        """The reports in one ``GET /api/dataValueSets`` answer fetched some other way.

        For answers read from a file or sent with a query of one's own (``startDate`` and
        ``endDate``, say); ``period`` is used for values that name none.
        """
        zone = self.session.time_zone if self.time_zone == "server" else self.time_zone
        return _Resolution(self, timestamp_parser(zone)).reports(body, period or "")

    def periods(self, period: PeriodSpec) -> tuple[str, ...]:
        """The period ids ``period`` stands for (see :meth:`read`).

        Raises:
            PeriodError: not a valid period id, a period id of another type than
                ``period_format``'s, or a reversed range.
        """
        if isinstance(period, tuple):
            start, end = period
            if end < start:
                raise PeriodError(
                    f"the period range ends ({end}) before it starts ({start})",
                    value=f"{start}..{end}",
                )
            current, last = period_for(start, self.period_type), period_for(end, self.period_type)
            ids = [current.id]
            while current.id != last.id:
                current = current.next()
                ids.append(current.id)
            return tuple(ids)
        if isinstance(period, date):
            return (format_period(period, self.period_format),)
        parsed = parse_period(period)
        if parsed.type != self.period_type:
            # DHIS2 matches the exact period id: a weekly id on a monthly data set reads nothing
            raise PeriodError(
                f"period {parsed.id} is {parsed.type.value}, but the data set's periods are "
                f"{self.period_type.value} (lmis.period_format {self.period_format!r}): "
                f"its reports hold no values for {parsed.id}",
                value=period,
            )
        return (parsed.id,)

    # -- requests --------------------------------------------------------------------------------

    def _read(
        self,
        periods: Sequence[str],
        org_units: Sequence[str] | None,
        *,
        children: bool,
        since: datetime | None,
    ) -> Iterator[StockReport]:
        if org_units is not None and not children:
            units: Sequence[str] = self._org_unit_uids(org_units)
        else:
            units = self._assigned_below(org_units)
        if not units:
            log.warning("no org unit to read: data set %s has none in scope", self.data_set)
            return
        zone = self.session.time_zone if self.time_zone == "server" else self.time_zone
        parse = timestamp_parser(zone)
        fixed = self._fixed_params(since, zone)
        longest = max(periods, key=len)
        batches = self.batches(units, read_query(fixed, period=longest))
        resolver = _Resolution(self, parse)
        total = with_problems = 0
        for period_id in periods:
            for batch in batches:
                params = read_query(fixed, period=period_id, org_units=batch)
                body = self.session.get_json(PATH, params)
                for report in resolver.reports(body, period_id):
                    total += 1
                    with_problems += bool(report.problems)
                    yield report
        if with_problems:
            log.warning(
                "%d of %d stock reports of data set %s have problems",
                with_problems,
                total,
                self.data_set,
            )
        log.info("read %d stock reports of data set %s", total, self.data_set)

    def _fixed_params(self, since: datetime | None, zone: tzinfo | None) -> dict[str, ParamValue]:
        return read_params(
            data_set=self.data_set,
            data_element_id_scheme=self.data_element_id_scheme,
            org_unit_id_scheme=self.org_unit_id_scheme,
            category_option_combo_id_scheme=self.category_option_combo_id_scheme,
            last_updated=None if since is None else format_timestamp(since, zone),
        )

    def batches(
        self, org_units: Sequence[str], params: dict[str, ParamValue]
    ) -> tuple[tuple[str, ...], ...]:
        """Split org unit UIDs into request batches: at most ``batch_size`` each, and short
        enough that the URL with ``params`` (and the repeated ``orgUnit``) fits
        ``max_url_length``. An org unit that fits nowhere still gets a request of its own."""
        groups = self.session.batches(
            PATH,
            params,
            org_units,
            lambda group: read_query({}, org_units=list(group)),
            max_count=self.batch_size,
            max_url_length=self.max_url_length,
        )
        return tuple(tuple(group) for group in groups)

    def _org_unit_uids(self, refs: Sequence[str]) -> tuple[str, ...]:
        """The UIDs of org units given in ``org_unit_id_scheme``, in the given order.

        Requests always name UIDs: ``orgUnitIdScheme`` governs the answer, and the input
        scheme parameter differs between versions.

        Raises:
            UnknownReferenceError: a code no org unit has.
        """
        wanted = tuple(dict.fromkeys(ref.strip() for ref in refs))
        if self.org_unit_id_scheme == "UID":
            return wanted
        places = self.org_units
        if not isinstance(places, OrgUnitResolver) or places.session is None:
            places = OrgUnitResolver(id_scheme="CODE", session=self.session)
        found = {code: info.uid for code, info in places.resolve_uids(wanted).items()}
        missing = [ref for ref in wanted if ref not in found]
        if missing:
            raise UnknownReferenceError(
                f"no org unit has code {', '.join(map(repr, missing))}: check the code, or "
                "pass a UID with org_unit_id_scheme UID"
            )
        return tuple(found[ref] for ref in wanted)

    def _assigned_below(self, org_units: Sequence[str] | None) -> tuple[str, ...]:
        """The data set's org units at or below ``org_units`` (or the user's roots), in the
        order DHIS2 lists them."""
        if org_units is not None:
            roots = set(self._org_unit_uids(org_units))
        else:
            me = self.session.get_json("me", {"fields": USER_ORG_UNITS_FIELDS})
            roots = {uid for uid, _, _ in org_unit_refs(me)}
            if not roots:
                log.warning("the DHIS2 user has no data capture org units: nothing to read")
                return ()
        body = self.session.get_json(
            f"dataSets/{self.data_set}", {"fields": DATA_SET_ORG_UNITS_FIELDS}
        )
        seen: dict[str, None] = {}
        for uid, _, path in org_unit_refs(body):
            ancestors = path.split("/") if path else (uid,)
            if uid in roots or not roots.isdisjoint(ancestors):
                seen.setdefault(uid, None)
        log.debug("data set %s: %d org units in scope", self.data_set, len(seen))
        return tuple(seen)


class _Resolution:
    """Turns data value set answers into reports, with look-ups memoised for one read."""

    def __init__(self, reader: StockReportReader, parse: Callable[[str], datetime]) -> None:
        self.reader = reader
        self.parse = parse
        self.items: dict[str, Item | None] = {}
        self.places: dict[str, tuple[Store | None, Customer | None]] = {}

    def reports(self, body: JsonValue, period_id: str) -> Iterator[StockReport]:
        groups: dict[tuple[str, str], list[DataValueRow]] = {}
        for row in data_value_rows(body):
            key = (row[0] or "", row[1] or period_id)
            group = groups.get(key)
            if group is None:
                groups[key] = group = []
            group.append(row)
        if not groups:
            return
        self._translate({row[2] for rows in groups.values() for row in rows if row[2]})
        self._translate_org_units([org_unit for org_unit, _ in groups])
        head_period, head_org_unit, head_complete = data_value_set_header(body)
        for (org_unit, period), rows in groups.items():
            complete = head_complete if (head_org_unit, head_period) == (org_unit, period) else None
            yield self.report(org_unit, period, complete, rows)

    def report(
        self, org_unit: str, period: str, complete: str | None, rows: list[DataValueRow]
    ) -> StockReport:
        problems: list[RecordProblem] = []
        store, customer = self._place(org_unit, problems)
        complete_date = None
        if complete:
            try:
                complete_date = parse_timestamp(complete).date()
            except (ValueError, OverflowError):
                problems.append(
                    RecordProblem(
                        "malformed", f"completeDate is not a date: {complete!r}", complete
                    )
                )
        lines: list[StockReportLine] = []
        unknown: set[str] = set()
        items = self.reader.items
        layout = self.reader.layout
        item_of = self._item
        parse = self.parse
        for _, _, element, combo, raw, updated, aoc in rows:
            if element is None:
                problems.append(RecordProblem("malformed", "a data value has no data element", raw))
                continue
            combos = ", ".join(c for c in (combo, aoc) if c is not None)
            where = f"data element {element}" + (f" ({combos})" if combos else "")
            measure = None
            if layout is not None:
                item, measure = layout.match(element, combo)
                self._layout_problems(
                    item,
                    measure,
                    element=element,
                    combo=combo,
                    where=where,
                    seen=unknown,
                    problems=problems,
                )
            else:
                item = item_of(element) if items is not None else None
                if item is None and items is not None and element not in unknown:
                    unknown.add(element)
                    problems.append(
                        RecordProblem("unknown_item", items.describe_lookup(element), element)
                    )
            value, problem = parse_quantity(raw, where=where)
            if problem is not None:
                problems.append(problem)
            updated_at = None
            if updated:
                try:
                    updated_at = parse(updated)
                except (ValueError, OverflowError):
                    problems.append(
                        RecordProblem(
                            "malformed", f"lastUpdated of {where} is not a timestamp", updated
                        )
                    )
            line = StockReportLine(element, combo, item, value, raw, updated_at, measure, aoc)
            lines.append(line)
        return StockReport(
            org_unit=org_unit,
            customer=customer,
            store=store,
            period=period,
            complete_date=complete_date,
            lines=tuple(lines),
            problems=tuple(problems),
        )

    def _layout_problems(
        self,
        item: Item | None,
        measure: str | None,
        *,
        element: str,
        combo: str | None,
        where: str,
        seen: set[str],
        problems: list[RecordProblem],
    ) -> None:
        """Problems of a line the layout placed only in part (each reference once a report)."""
        layout = self.reader.layout
        assert layout is not None  # callers check
        if item is None:
            by_combo = layout.layout.item_is == "category_option_combo"
            ref = (combo or "") if by_combo else element
            if ref not in seen:
                seen.add(ref)
                problems.append(
                    RecordProblem(
                        "unknown_item",
                        f"{where} belongs to no item under the data set layout (no item's "
                        f"{layout.items.item_field} leads to it)",
                        ref,
                    )
                )
        if measure is None and f"measure {where}" not in seen:
            seen.add(f"measure {where}")
            problems.append(
                RecordProblem(
                    "unknown_measure",
                    f"{where} matches no measure of [data_set.measures] "
                    f"({', '.join(layout.measures)})",
                    combo if layout.layout.item_is == "data_element" else element,
                )
            )

    def _place(
        self, org_unit: str, problems: list[RecordProblem]
    ) -> tuple[Store | None, Customer | None]:
        lookup = self.reader.org_units
        if lookup is None:
            return None, None
        place = self.places.get(org_unit)
        if place is None:
            place = self.places[org_unit] = (
                lookup.store_for(org_unit),
                lookup.customer_for(org_unit),
            )
        if place == (None, None):
            problems.append(
                RecordProblem("unknown_org_unit", lookup.describe_lookup(org_unit), org_unit)
            )
        return place

    def _translate_org_units(self, org_units: list[str]) -> None:
        lookup = self.reader.org_units
        if isinstance(lookup, OrgUnitResolver):
            lookup.prefetch(ou for ou in org_units if ou not in self.places)

    def _item(self, element: str) -> Item | None:
        if element in self.items:
            return self.items[element]
        item = self.items[element] = self._lookup(element)
        return item

    def _lookup(self, element: str) -> Item | None:
        items = self.reader.items
        assert items is not None  # callers check
        return items.item_for_ref(element)

    def _translate(self, elements: set[str]) -> None:
        """Let the item resolver translate, in one batch, the refs sent in the wrong scheme."""
        items = self.reader.items
        if items is not None and not self.reader.layout:  # a layout matches UIDs and codes
            items.prefetch(e for e in elements if e not in self.items)
