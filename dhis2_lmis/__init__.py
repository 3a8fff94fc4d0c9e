"""dhis2-lmis: a typed client for the DHIS2 side of an mSupply-style LMIS bridge.

The names below are the public contract (see docs/); lower layers are public too for callers
who need one piece. Importing the package configures no logging: only a ``NullHandler``.
"""

from __future__ import annotations

import logging

from dhis2_lmis._version import __version__ as __version__
from dhis2_lmis.client import Dhis2Lmis
from dhis2_lmis.config import Dhis2Config
from dhis2_lmis.dhis2.auth import BasicAuth, BodyAuth, TokenAuth
from dhis2_lmis.dhis2.events import EventQuery, iter_events
from dhis2_lmis.dhis2.imports import ImportConflict, ImportFailedError, ImportSummary
from dhis2_lmis.dhis2.metadata import DataElementInfo, OrgUnitInfo
from dhis2_lmis.dhis2.periods import Period, PeriodError, PeriodType, format_period, parse_period
from dhis2_lmis.dhis2.records import ConnectionCheck, DataValue, Event, Note, RecordProblem
from dhis2_lmis.dhis2.retry import RetryPolicy
from dhis2_lmis.dhis2.session import Dhis2Session
from dhis2_lmis.dhis2.versions import ServerVersion
from dhis2_lmis.errors import (
    AuthenticationError,
    ConfigError,
    ConfigProblem,
    Dhis2ConnectionError,
    Dhis2DisabledError,
    Dhis2Error,
    Dhis2TimeoutError,
    MissingExtraError,
    NotFoundError,
    PackingListError,
    PermissionDeniedError,
    RequestRejectedError,
    ResponseFormatError,
    ServerError,
    UnknownReferenceError,
    UnsupportedVersionError,
)
from dhis2_lmis.lmis.checks import Finding, PreflightError
from dhis2_lmis.lmis.datavalues import (
    DataValueSetBuilder,
    DuplicateValueError,
    InvalidValueError,
    ItemValueSetBuilder,
)
from dhis2_lmis.lmis.models import (
    ConsignmentReceipt,
    Customer,
    Item,
    Requisition,
    RequisitionLine,
    StockLevel,
    StockReport,
    StockReportLine,
    StockTransaction,
    Store,
)
from dhis2_lmis.lmis.references import (
    ItemResolver,
    LayoutResolver,
    OrgUnitResolver,
    load_customers,
    load_items,
    load_stores,
)
from dhis2_lmis.lmis.stock import (
    PackingList,
    StockPushReport,
    StockReceipt,
    StockReceiptOutcome,
)
from dhis2_lmis.run.frames import to_dataframe
from dhis2_lmis.run.state import SqliteStateStore, StateError, StateLockedError, StateStore
from dhis2_lmis.run.sync import RunReport, SyncRunner

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AuthenticationError",
    "BasicAuth",
    "BodyAuth",
    "ConfigError",
    "ConfigProblem",
    "ConnectionCheck",
    "ConsignmentReceipt",
    "Customer",
    "DataElementInfo",
    "DataValue",
    "DataValueSetBuilder",
    "Dhis2Config",
    "Dhis2ConnectionError",
    "Dhis2DisabledError",
    "Dhis2Error",
    "Dhis2Lmis",
    "Dhis2Session",
    "Dhis2TimeoutError",
    "DuplicateValueError",
    "Event",
    "EventQuery",
    "Finding",
    "ImportConflict",
    "ImportFailedError",
    "ImportSummary",
    "InvalidValueError",
    "Item",
    "ItemResolver",
    "ItemValueSetBuilder",
    "LayoutResolver",
    "MissingExtraError",
    "NotFoundError",
    "Note",
    "OrgUnitInfo",
    "OrgUnitResolver",
    "PackingList",
    "PackingListError",
    "Period",
    "PeriodError",
    "PeriodType",
    "PermissionDeniedError",
    "PreflightError",
    "RecordProblem",
    "RequestRejectedError",
    "Requisition",
    "RequisitionLine",
    "ResponseFormatError",
    "RetryPolicy",
    "RunReport",
    "ServerError",
    "ServerVersion",
    "SqliteStateStore",
    "StateError",
    "StateLockedError",
    "StateStore",
    "StockLevel",
    "StockPushReport",
    "StockReceipt",
    "StockReceiptOutcome",
    "StockReport",
    "StockReportLine",
    "StockTransaction",
    "Store",
    "SyncRunner",
    "TokenAuth",
    "UnknownReferenceError",
    "UnsupportedVersionError",
    "format_period",
    "iter_events",
    "load_customers",
    "load_items",
    "load_stores",
    "parse_period",
    "to_dataframe",
]
