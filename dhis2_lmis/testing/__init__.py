"""An offline DHIS2 for tests and demos: ``FakeDhis2`` and the records it stores.

Stdlib only (no pytest, no requests), so ``dhis2-lmis demo`` can start it quickly; the pytest
fixtures live in ``dhis2_lmis.testing.plugin``. ``LocalSmtpServer`` and ``ReceivedMail`` are
built on aiosmtpd (the ``testing`` extra) and imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dhis2_lmis.testing._demo import DEMO, DemoIds, seed_demo
from dhis2_lmis.testing._fake import FakeDhis2
from dhis2_lmis.testing._server import FaultKind, Latency, RecordedRequest
from dhis2_lmis.testing._world import (
    AggregateValue,
    DataElement,
    DataInputPeriod,
    DataSet,
    Enrollment,
    Event,
    OptionSet,
    OrgUnit,
    Program,
    ProgramStage,
    TrackedEntity,
    TrackedEntityAttribute,
    User,
)

if TYPE_CHECKING:  # pragma: no cover - imported on first use, see __getattr__
    from dhis2_lmis.testing.smtp import LocalSmtpServer, ReceivedMail

__all__ = [
    "DEMO",
    "AggregateValue",
    "DataElement",
    "DataInputPeriod",
    "DataSet",
    "DemoIds",
    "Enrollment",
    "Event",
    "FakeDhis2",
    "FaultKind",
    "Latency",
    "LocalSmtpServer",
    "OptionSet",
    "OrgUnit",
    "Program",
    "ProgramStage",
    "ReceivedMail",
    "RecordedRequest",
    "TrackedEntity",
    "TrackedEntityAttribute",
    "User",
    "seed_demo",
]


def __getattr__(name: str) -> object:
    """Import the SMTP test server (and so aiosmtpd) only when it is asked for."""
    if name in ("LocalSmtpServer", "ReceivedMail"):
        from dhis2_lmis.testing import smtp  # noqa: PLC0415 - optional extra, on first use

        return getattr(smtp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
