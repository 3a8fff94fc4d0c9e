"""The release number, in the one module every layer may import (the session's User-Agent)."""

__version__ = "0.2.0"
