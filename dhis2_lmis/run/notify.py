"""Error reports: log every error of a run, then send one e-mail to the configured addresses.

The mSupply preferences page has a "Send errors to" field: whoever runs the integration wants to
hear about failed events without reading logs. A run collects its errors in an
:class:`ErrorReport`; each one is logged at once (logger ``dhis2_lmis.run.sync``, level ERROR, with
the record it concerns), and after the run :func:`send_error_report` sends ONE message listing
them all.

E-mail is a side channel: an unreachable or misconfigured SMTP server is logged as a WARNING on
``dhis2_lmis.run.notify`` and :func:`send_error_report` returns False; it never raises, so mail
trouble cannot break a sync run. Error texts are built without secrets in the first place
(see :mod:`dhis2_lmis.errors`); as a second line of defence every known secret (passwords,
tokens, client secrets, the SMTP password) is replaced by ``***`` in the subject and body.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import attrs

from dhis2_lmis.dhis2._clock import utc_now

__all__ = [
    "ErrorReport",
    "ReportEntry",
    "SmtpSettingsLike",
    "log_error",
    "parse_recipients",
    "scrub",
    "send_error_report",
]

log = logging.getLogger(__name__)
_sync_log = logging.getLogger("dhis2_lmis.run.sync")

_MASK = "***"
_SUBJECT_MAX = 200  # long subjects get folded or cut by mail clients anyway


class SmtpSettingsLike(Protocol):
    """The ``[smtp]`` settings :func:`send_error_report` needs; ``config.SmtpSettings`` fits.

    ``password`` is the resolved value (read from ``password_env`` by the config), not the name
    of the variable. Read-only properties, so frozen attrs classes satisfy the protocol.
    """

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def starttls(self) -> bool: ...

    @property
    def ssl(self) -> bool: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def sender(self) -> str: ...

    @property
    def timeout(self) -> float: ...


@attrs.frozen
class ReportEntry:
    """One error of a run.

    Attributes:
        program: the program key or UID the record belongs to (``order``, ``receipt``, ...).
        record: what the error concerns, in words a reader can look up (``event AbC123def45``,
            ``store Central Pharmacy``).
        message: what went wrong and, ideally, what to do.
        at: when the error was recorded.
    """

    program: str
    record: str
    message: str
    at: datetime


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` by ``***``.

    Longer secrets go first, so a secret that contains another is masked whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def parse_recipients(value: str | Iterable[str]) -> tuple[str, ...]:
    """Addresses from the "Send errors to" field: ``;``- (or ``,``-) separated, or a list.

    Blanks are dropped and duplicates removed, keeping the first order.
    """
    parts = [value] if isinstance(value, str) else list(value)
    found: dict[str, None] = {}
    for part in parts:
        for piece in part.replace(",", ";").split(";"):
            address = piece.strip()
            if address:
                found.setdefault(address, None)
    return tuple(found)


def log_error(entry: ReportEntry) -> None:
    """Log one error at ERROR on ``dhis2_lmis.run.sync``, naming the program and the record."""
    _sync_log.error(
        "%s %s: %s",
        entry.program,
        entry.record,
        entry.message,
        extra={"dhis2_program": entry.program, "dhis2_record": entry.record},
    )


class ErrorReport:
    """The errors of one run, collected for the single e-mail that follows it.

    Each :meth:`add` also logs the error (see :func:`log_error`), so callers do not log it a
    second time. Safe to add to from several threads.

    Args:
        now: clock for entries added without ``at``.
        secrets: strings masked in every entry before it is stored or logged.
    """

    def __init__(
        self, *, now: Callable[[], datetime] = utc_now, secrets: Sequence[str] = ()
    ) -> None:
        self._now = now
        self._secrets = tuple(secrets)
        self._entries: list[ReportEntry] = []
        self._lock = threading.Lock()

    def add(
        self, program: str, record: str, message: str, *, at: datetime | None = None
    ) -> ReportEntry:
        """Record and log one error; returns the stored entry."""
        entry = ReportEntry(
            program=program,
            record=scrub(record, self._secrets),
            message=scrub(message, self._secrets),
            at=at if at is not None else self._now(),
        )
        with self._lock:
            self._entries.append(entry)
        log_error(entry)
        return entry

    @property
    def entries(self) -> tuple[ReportEntry, ...]:
        """Every entry so far, in the order added."""
        with self._lock:
            return tuple(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[ReportEntry]:
        return iter(self.entries)

    def subject(self, run_summary: str | None = None) -> str:
        """A one-line subject: how many errors, plus the caller's run summary if given."""
        count = len(self)
        text = f"dhis2-lmis: {count} error{'' if count == 1 else 's'} in the sync run"
        if run_summary:
            text += f" ({run_summary})"
        text = " ".join(text.split())  # no line breaks: they would end the header
        return text if len(text) <= _SUBJECT_MAX else text[: _SUBJECT_MAX - 3] + "..."

    def render_text(self, run_summary: str | None = None) -> str:
        """The plain-text body: every error with its program, record, time and message."""
        entries = self.entries
        count = len(entries)
        lines = [f"dhis2-lmis recorded {count} error{'' if count == 1 else 's'} during the run."]
        if run_summary:
            lines.append(f"Run summary: {run_summary}")
        lines.append("")
        for number, entry in enumerate(entries, start=1):
            lines.append(f"{number}. [{entry.program}] {entry.record} at {entry.at.isoformat()}")
            lines.extend(f"   {line}" for line in (entry.message.splitlines() or [""]))
            lines.append("")
        lines.append("Each error above is also in the dhis2-lmis log (logger dhis2_lmis.run.sync).")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"ErrorReport({len(self)} entries)"


def send_error_report(
    report: ErrorReport,
    *,
    recipients: str | Sequence[str],
    smtp: SmtpSettingsLike,
    secrets: Sequence[str] = (),
    run_summary: str | None = None,
    now: Callable[[], datetime] = utc_now,
) -> bool:
    """E-mail the run's errors as ONE message to every recipient.

    Args:
        report: the run's errors; nothing is sent when it is empty.
        recipients: addresses, or the "Send errors to" text (``;``-separated).
        smtp: host, port, ``ssl`` (SMTPS from the start) or ``starttls`` (upgrade after
            connecting), optional login, sender and timeout.
        secrets: strings that must never appear in the mail (passwords, API tokens, OAuth2 client
            secrets); the SMTP password is always added.
        run_summary: one line about the run (counts), shown in subject and body.
        now: clock for the ``Date`` header.

    Returns:
        True when the server accepted the message for at least one recipient; False when there
        was nothing to send, no recipient, or any SMTP or network failure (logged as a WARNING
        on ``dhis2_lmis.run.notify``). Never raises for mail trouble: a run must not fail because
        its report could not be mailed.
    """
    addresses = parse_recipients(recipients)
    if not report:
        log.debug("no errors in this run: no error report sent")
        return False
    if not addresses:
        log.info("%d errors in this run, but no error e-mail address is configured", len(report))
        return False
    hidden = (*secrets, *(s for s in (smtp.password,) if s))
    where = f"{smtp.host}:{smtp.port}"
    try:
        message = EmailMessage()
        message["Subject"] = scrub(report.subject(run_summary), hidden)
        message["From"] = smtp.sender
        message["To"] = ", ".join(addresses)
        message["Date"] = format_datetime(now())
        domain = smtp.sender.rpartition("@")[2] or "dhis2-lmis.invalid"
        message["Message-ID"] = make_msgid("dhis2-lmis", domain=domain)
        message.set_content(scrub(report.render_text(run_summary), hidden))
        refused = _deliver(message, addresses, smtp)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        # OSError covers refused connections, timeouts and TLS failures; ValueError a header
        # the e-mail package rejects (a line break in an address from the configuration).
        log.warning(
            "could not e-mail the error report (%d errors) to %d recipients via %s: %s: %s",
            len(report),
            len(addresses),
            where,
            type(exc).__name__,
            scrub(str(exc), hidden),
        )
        return False
    if refused:
        log.warning(
            "the SMTP server %s refused %d of %d error report recipients: %s",
            where,
            len(refused),
            len(addresses),
            ", ".join(sorted(refused)),
        )
    log.info(
        "error report (%d errors) e-mailed to %d recipients via %s",
        len(report),
        len(addresses) - len(refused),
        where,
    )
    return True


def _deliver(
    message: EmailMessage, addresses: Sequence[str], smtp: SmtpSettingsLike
) -> dict[str, tuple[int, bytes]]:
    """Connect, optionally upgrade and log in, send once; returns the refused recipients."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    with client:
        if smtp.starttls and not smtp.ssl:
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        return client.send_message(message, from_addr=smtp.sender, to_addrs=list(addresses))
