"""An optional tqdm progress bar around the lazy fetchers, for notebooks and scripts.

The fetchers page through DHIS2 lazily and the total is unknown until the last page (asking for
it costs an extra count query, see STYLE.md), so the bar counts records as they arrive rather
than showing a percentage. tqdm is optional (the ``notebook`` extra): without it, or when not
asked for, the iterator passes through untouched. The bar goes to stderr in a terminal (stdout
carries results) and becomes a widget in Jupyter when ipywidgets is installed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["with_progress"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def with_progress(
    iterable: Iterable[_T], *, desc: str, enabled: bool, unit: str = "records"
) -> Iterator[_T]:
    """Yield the items of ``iterable``, counting them on a tqdm bar when ``enabled``.

    Nothing is read ahead: each item is handed on as soon as the underlying iterator yields it,
    so wrapping a fetcher keeps it lazy. The bar is closed when the iterator is exhausted,
    closed early (``.close()``, ``break`` in a ``for``) or raises.

    Args:
        iterable: what to count, usually a fetcher's iterator.
        desc: the bar's label, e.g. ``"requisitions"``.
        enabled: False returns a plain iterator over ``iterable`` (no tqdm import at all).
        unit: what the items are called on the bar ("requisitions: 8 records").

    Returns:
        An iterator over the same items in the same order.
    """
    if not enabled:
        return iter(iterable)
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415 - optional extra, imported only when asked
    except ImportError:
        log.debug("progress requested for %s, but tqdm is not installed", desc)
        return iter(iterable)
    return _counted(iterable, tqdm, desc=desc, unit=unit)


def _counted(iterable: Iterable[_T], tqdm: type, *, desc: str, unit: str) -> Iterator[_T]:
    # tqdm writes the unit straight after the number ("8record"): the space is ours to add.
    bar = tqdm(desc=desc, unit=f" {unit}", file=sys.stderr, disable=False, leave=True)
    try:
        for item in iterable:
            bar.update(1)
            yield item
    finally:
        bar.close()
