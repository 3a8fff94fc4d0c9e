"""LocalSmtpServer: a real SMTP server on 127.0.0.1 for testing error e-mails offline.

Just enough ESMTP for :mod:`smtplib`: EHLO/HELO, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET,
NOOP, QUIT. STARTTLS is advertised but always refused (454), like a server whose TLS is broken,
so the error path of a ``starttls = true`` configuration can be tested too. Standard library
only, like :class:`~dhis2_lmis.testing.FakeDhis2`.

Example::

    with LocalSmtpServer() as smtp:
        ...  # send through 127.0.0.1:smtp.port
        (mail,) = smtp.messages
        assert "stock@example.org" in mail.rcpt_tos
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType

__all__ = ["LocalSmtpServer", "ReceivedMail"]


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


class LocalSmtpServer(socketserver.ThreadingTCPServer):
    """An SMTP server on a free port of 127.0.0.1, serving from a thread while entered.

    Args:
        auth_mechanisms: the AUTH mechanisms advertised in EHLO.

    Attributes:
        credentials: when set, the only ``(user, password)`` AUTH accepts.
        messages: every message received, in order.
        connections: how many sessions were opened.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, auth_mechanisms: str = "PLAIN LOGIN") -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.auth_mechanisms = auth_mechanisms
        self.credentials: tuple[str, str] | None = None
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def start(self) -> LocalSmtpServer:
        """Serve from a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> LocalSmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 5
    server: LocalSmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def read_line(self) -> str:
        raw = self.rfile.readline()
        if not raw.endswith(b"\n"):
            raise EOFError  # the client went away mid-line (or sent TLS to a plain server)
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        try:
            self.converse()
        except (EOFError, OSError):
            return

    def converse(self) -> None:
        mail_from = ""
        rcpt: list[str] = []
        user: str | None = None
        self.reply("220 127.0.0.1 test ESMTP")
        while True:
            verb, _, arg = self.read_line().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-127.0.0.1")
                self.reply(f"250-AUTH {self.server.auth_mechanisms}")
                self.reply("250-STARTTLS")
                self.reply("250 HELP")
            elif verb == "HELO":
                self.reply("250 127.0.0.1")
            elif verb == "STARTTLS":
                self.reply("454 4.7.0 TLS not available")
            elif verb == "AUTH":
                user = self.authenticate(arg)
                if user is None:
                    self.reply("535 5.7.8 authentication failed")
                else:
                    self.reply("235 2.7.0 authenticated")
            elif verb == "MAIL":
                mail_from = arg.partition(":")[2].split()[0].strip("<>")
                rcpt = []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(arg.partition(":")[2].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = self.read_data()
                with self.server.lock:
                    self.server.messages.append(ReceivedMail(mail_from, tuple(rcpt), data, user))
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("500 unknown command")

    def read_data(self) -> bytes:
        lines: list[bytes] = []
        while True:
            raw = self.rfile.readline()
            if raw in (b".\r\n", b".\n", b""):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)

    def authenticate(self, arg: str) -> str | None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            if not initial:
                self.reply("334 ")
                initial = self.read_line()
            _, user, password = base64.b64decode(initial).decode().split("\0")
        elif mechanism.upper() == "LOGIN":
            if not initial:
                self.reply("334 " + base64.b64encode(b"Username:").decode())
                initial = self.read_line()
            user = base64.b64decode(initial).decode()
            self.reply("334 " + base64.b64encode(b"Password:").decode())
            password = base64.b64decode(self.read_line()).decode()
        else:
            return None
        expected = self.server.credentials
        return user if expected is None or expected == (user, password) else None
