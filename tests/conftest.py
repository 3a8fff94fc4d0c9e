"""Session set-up shared by every test module."""

from __future__ import annotations

import signal

# A shell starts background jobs (`pytest &`, `nohup pytest &`, some CI runners) with SIGINT
# ignored, and the dhis2-lmis processes the tests start would inherit that: the Ctrl-C the
# tests send them would be lost and `demo --serve` would never stop. With Python's own handler
# here, children start with the default disposition and install KeyboardInterrupt as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
