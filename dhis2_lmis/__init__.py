"""dhis2-lmis: a typed client for the DHIS2 side of an mSupply-style LMIS bridge."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
