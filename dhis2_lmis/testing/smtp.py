"""LocalSmtpServer: a real SMTP server on 127.0.0.1 for testing error e-mails offline.

The SMTP dialogue is aiosmtpd's (the ``testing`` extra), a maintained server that smtplib is
tested against; this module only adds what tests of a bridge need around it: a free port, the
received messages as :class:`ReceivedMail`, optional credentials for AUTH PLAIN / LOGIN, and
STARTTLS advertised but refused (454), like a server whose TLS is broken, so the error path of a
``starttls = true`` configuration can be tested too.

Example::

    with LocalSmtpServer() as smtp:
        ...  # send through 127.0.0.1:smtp.port
        (mail,) = smtp.messages
        assert "stock@example.org" in mail.rcpt_tos
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from dhis2_lmis.errors import MissingExtraError

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
except ImportError as exc:  # the testing extra is optional: FakeDhis2 needs none of it
    raise MissingExtraError("aiosmtpd", "LocalSmtpServer", extra="testing") from exc

__all__ = ["LocalSmtpServer", "ReceivedMail"]

# The mechanisms aiosmtpd implements; those not advertised are excluded per connection.
_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_user: str | None

    def parsed(self) -> EmailMessage:
        """The message, parsed with the modern e-mail policy."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # the default policy builds EmailMessage
        return message


class LocalSmtpServer:
    """An SMTP server on a free port of 127.0.0.1, serving from a thread while entered.

    Args:
        auth_mechanisms: the AUTH mechanisms advertised in EHLO (``"PLAIN"``, ``"LOGIN"`` or
            both); settable while serving, it applies from the next connection.

    Attributes:
        credentials: when set, the only ``(user, password)`` AUTH accepts; any otherwise.
        messages: every message received, in order.
        connections: how many SMTP sessions were opened (greeted with EHLO).
    """

    def __init__(self, *, auth_mechanisms: str = "PLAIN LOGIN") -> None:
        self.auth_mechanisms = auth_mechanisms
        self.credentials: tuple[str, str] | None = None
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.lock = threading.Lock()
        # Bound now, so the port is known before start() and no other process can take it.
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._port = int(self._socket.getsockname()[1])
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._port

    def start(self) -> LocalSmtpServer:
        """Serve from a daemon thread (idempotent)."""
        if self._controller is None:
            self._controller = _Controller(self)
            self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._socket.close()

    def __enter__(self) -> LocalSmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- aiosmtpd handler hooks (called on the server's event loop) ----------------------------

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Count the session and advertise STARTTLS, which aiosmtpd then refuses with 454."""
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        return [*responses[:-1], "250-STARTTLS", responses[-1]]

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message, with who sent it and as which user."""
        data = envelope.original_content or b""
        user = session.auth_data if isinstance(session.auth_data, str) else None
        mail = ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), data, user)
        with self.lock:
            self.messages.append(mail)
        return "250 queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accept the configured credentials, or anyone when none are set."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        expected = self.credentials
        if expected is not None and expected != (user, password):
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)


class _Controller(Controller):
    """aiosmtpd's threaded controller, serving on the socket bound by LocalSmtpServer."""

    def __init__(self, owner: LocalSmtpServer) -> None:
        super().__init__(owner, hostname="127.0.0.1", port=owner.port, ready_timeout=5.0)
        self.owner = owner

    def factory(self) -> SMTP:
        """One SMTP protocol per connection, offering the mechanisms asked for now."""
        offered = set(self.owner.auth_mechanisms.upper().split())
        return SMTP(
            self.handler,
            hostname="127.0.0.1",
            authenticator=self.owner.authenticate,
            auth_require_tls=False,
            auth_exclude_mechanism=sorted(_MECHANISMS - offered),
        )

    def _create_server(self) -> Any:  # aiosmtpd's hook for how the server listens
        return self.loop.create_server(self._factory_invoker, sock=self.owner._socket)
