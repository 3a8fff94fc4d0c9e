"""Tiny HTML builders for the ``_repr_html_`` methods Jupyter calls, and the text bits reprs share.

Every value passes through :func:`html.escape` here, once, so a DHIS2 message such as
``<bad> & worse`` cannot break the notebook's markup, and no ``_repr_html_`` needs to remember
to escape. Only plain ``<table>``, ``<p>`` and ``<ol>`` are produced: notebooks style them, and
the text stays readable when a front end shows the raw HTML.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

__all__ = [
    "cell",
    "key_value_table",
    "number",
    "ordered_list",
    "paragraph",
    "place",
    "table",
    "when",
]


class _Named(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...


def cell(value: object) -> str:
    """``value`` as escaped text; None is an empty cell."""
    return "" if value is None else html.escape(str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table with one header row and a ``<td>`` per value of each row."""
    parts = ["<table><tr>", *(f"<th>{cell(name)}</th>" for name in header), "</tr>"]
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def key_value_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table: the name as ``<th>``, the value as ``<td>``, one pair a row."""
    rows = "".join(f"<tr><th>{cell(name)}</th><td>{cell(value)}</td></tr>" for name, value in pairs)
    return f"<table>{rows}</table>"


def paragraph(text: str) -> str:
    """One escaped ``<p>``."""
    return f"<p>{cell(text)}</p>"


def ordered_list(items: Iterable[object]) -> str:
    """An ``<ol>`` of the items, or nothing when there are none."""
    entries = "".join(f"<li>{cell(item)}</li>" for item in items)
    return f"<ol>{entries}</ol>" if entries else ""


def when(value: datetime | date | None) -> str:
    """A timestamp to the second with its offset (``2026-11-02 09:00:00+03:00``), or ``-``."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value.isoformat()


def number(value: Decimal | None) -> str:
    """A quantity in plain notation (``100``, ``2.5``), or ``?`` when unknown."""
    return "?" if value is None else format(value, "f")


def place(org_unit: str | None, *parties: _Named | None) -> str:
    """The first resolved customer or store as ``name (code)``, else the org unit, else ``?``."""
    for party in parties:
        if party is not None:
            return f"{party.name} ({party.code})"
    return org_unit or "?"
