"""Session set-up shared by every test module."""

from __future__ import annotations

import signal
import socket
from typing import Any

import pytest

# A shell starts background jobs (`pytest &`, `nohup pytest &`, some CI runners) with SIGINT
# ignored, and the dhis2-lmis processes the tests start would inherit that: the Ctrl-C the
# tests send them would be lost and `demo --serve` would never stop. With Python's own handler
# here, children start with the default disposition and install KeyboardInterrupt as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def no_such_host(monkeypatch: pytest.MonkeyPatch) -> str:
    """A host name that does not resolve, answered without asking any DNS server.

    Names under ``.invalid`` never resolve (RFC 6761), but looking one up still sends a query
    to the machine's resolver; tests reach no address but 127.0.0.1, so the lookup of this one
    name fails here, as the resolver would make it fail. Every other name resolves as usual.
    """
    host = "no-such-host.invalid"
    real = socket.getaddrinfo

    def getaddrinfo(name: object, *args: Any, **kwargs: Any) -> Any:
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return host
