"""An offline DHIS2 for tests and demos: ``FakeDhis2`` and the records it stores.

Stdlib only (no pytest, no requests), so ``dhis2-lmis demo`` can start it quickly; the pytest
fixtures live in ``dhis2_lmis.testing.plugin``.
"""

from __future__ import annotations

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
