"""Error reports: logging, rendering, and one e-mail per run to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from datetime import datetime, timezone

import attrs
import pytest

from dhis2_lmis.run.notify import (
    ErrorReport,
    ReportEntry,
    SmtpSettingsLike,
    log_error,
    parse_recipients,
    scrub,
    send_error_report,
)
from dhis2_lmis.testing import LocalSmtpServer

AT = datetime(2026, 11, 4, 6, 0, tzinfo=timezone.utc)
PASSWORD = "dhis2-Pa55word!"
TOKEN = "d2pat_5xVA12xyUbWNedQxy4ohH77WlxRGVY1234567890"
CLIENT_SECRET = "0a1b2c3d-client-secret-4e5f"
SMTP_PASSWORD = "smtp-S3cret"
RECIPIENTS = "stock@example.org; pharmacist@example.org ;  it@example.org"


@attrs.frozen
class Smtp:
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    sender: str = "dhis2-lmis@example.org"
    timeout: float = 5.0


def settings_for(
    server: LocalSmtpServer,
    *,
    starttls: bool = False,
    ssl: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> Smtp:
    return Smtp(port=server.port, starttls=starttls, ssl=ssl, username=username, password=password)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_report() -> ErrorReport:
    report = ErrorReport(now=lambda: AT)
    report.add("order", "event AbC123def45", "no mSupply item for data element DE_AMOX500")
    report.add("receipt", "event QrS987tuv65", "stock push rejected: org unit not assigned")
    return report


# --- report contents -----------------------------------------------------------------------


def test_add_logs_each_error_with_its_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="dhis2_lmis.run.sync")
    sample_report()
    records = [r for r in caplog.records if r.name == "dhis2_lmis.run.sync"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert "event AbC123def45" in records[0].getMessage()
    assert "DE_AMOX500" in records[0].getMessage()
    assert "event QrS987tuv65" in records[1].getMessage()


def test_log_error_names_program_and_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="dhis2_lmis.run.sync")
    log_error(ReportEntry(program="str", record="store Central", message="boom", at=AT))
    assert [r.getMessage() for r in caplog.records] == ["str store Central: boom"]


def test_report_counts_entries_and_keeps_order() -> None:
    report = sample_report()
    assert len(report) == 2
    assert [e.record for e in report] == ["event AbC123def45", "event QrS987tuv65"]
    assert report.entries[0].at == AT


def test_render_text_lists_every_error_with_its_record() -> None:
    body = sample_report().render_text("fetched 12, handled 10, failed 2")
    assert "2 errors" in body
    assert "fetched 12, handled 10, failed 2" in body
    assert "1. [order] event AbC123def45" in body
    assert "no mSupply item for data element DE_AMOX500" in body
    assert "2. [receipt] event QrS987tuv65" in body
    assert "stock push rejected: org unit not assigned" in body


def test_subject_is_one_line_with_count_and_summary() -> None:
    subject = sample_report().subject("fetched 12,\nfailed 2")
    assert subject == "dhis2-lmis: 2 errors in the sync run (fetched 12, failed 2)"


def test_report_masks_its_secrets_before_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="dhis2_lmis.run.sync")
    report = ErrorReport(now=lambda: AT, secrets=[TOKEN])
    report.add("order", "event X", f"server echoed ApiToken {TOKEN}")
    assert TOKEN not in caplog.text
    assert report.entries[0].message == "server echoed ApiToken ***"


def test_scrub_masks_longest_secret_first() -> None:
    assert scrub("abc-def and abc", ["abc", "abc-def", ""]) == "*** and ***"


def test_parse_recipients_splits_semicolons_and_drops_blanks_and_duplicates() -> None:
    assert parse_recipients(RECIPIENTS + ";;stock@example.org") == (
        "stock@example.org",
        "pharmacist@example.org",
        "it@example.org",
    )
    assert parse_recipients(["a@example.org", "b@example.org; c@example.org"]) == (
        "a@example.org",
        "b@example.org",
        "c@example.org",
    )


# --- sending -------------------------------------------------------------------------------


def test_one_message_goes_to_all_recipients(fake_smtp: LocalSmtpServer) -> None:
    sent = send_error_report(
        sample_report(),
        recipients=RECIPIENTS,
        smtp=settings_for(fake_smtp),
        now=lambda: AT,
    )
    assert sent is True
    assert len(fake_smtp.messages) == 1
    assert fake_smtp.connections == 1
    received = fake_smtp.messages[0]
    assert received.rcpt_tos == ("stock@example.org", "pharmacist@example.org", "it@example.org")
    assert received.mail_from == "dhis2-lmis@example.org"
    message = received.parsed()
    assert message["Subject"] == "dhis2-lmis: 2 errors in the sync run"
    assert message["To"] == "stock@example.org, pharmacist@example.org, it@example.org"


def test_message_body_lists_each_error_and_record(fake_smtp: LocalSmtpServer) -> None:
    send_error_report(sample_report(), recipients=RECIPIENTS, smtp=settings_for(fake_smtp))
    body = fake_smtp.messages[0].parsed().get_content()
    assert "event AbC123def45" in body
    assert "no mSupply item for data element DE_AMOX500" in body
    assert "event QrS987tuv65" in body
    assert "stock push rejected: org unit not assigned" in body


def test_no_secret_reaches_the_message(fake_smtp: LocalSmtpServer) -> None:
    report = ErrorReport(now=lambda: AT)
    report.add("order", f"event with token {TOKEN}", f"login as admin:{PASSWORD} failed")
    report.add("receipt", "event Z", f"client_secret={CLIENT_SECRET}; smtp {SMTP_PASSWORD}")
    fake_smtp.credentials = ("mailer", SMTP_PASSWORD)
    sent = send_error_report(
        report,
        recipients=RECIPIENTS,
        smtp=settings_for(fake_smtp, username="mailer", password=SMTP_PASSWORD),
        secrets=[PASSWORD, TOKEN, CLIENT_SECRET],
        run_summary=f"token {TOKEN}",
    )
    assert sent is True
    received = fake_smtp.messages[0]
    message = received.parsed()
    visible = received.data.decode("utf-8", "replace") + message.get_content()
    for secret in (PASSWORD, TOKEN, CLIENT_SECRET, SMTP_PASSWORD):
        assert secret not in visible
        assert secret not in str(message["Subject"])
    assert "admin:*** failed" in message.get_content()
    assert "***" in str(message["Subject"])


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_logs_in_when_username_is_set(fake_smtp: LocalSmtpServer, mechanism: str) -> None:
    fake_smtp.auth_mechanisms = mechanism
    fake_smtp.credentials = ("mailer", SMTP_PASSWORD)
    sent = send_error_report(
        sample_report(),
        recipients=RECIPIENTS,
        smtp=settings_for(fake_smtp, username="mailer", password=SMTP_PASSWORD),
    )
    assert sent is True
    assert fake_smtp.messages[0].auth_user == "mailer"


def test_refused_login_returns_false_and_logs_warning_without_password(
    fake_smtp: LocalSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dhis2_lmis.run.notify")
    fake_smtp.credentials = ("mailer", "the-right-one")
    sent = send_error_report(
        sample_report(),
        recipients=RECIPIENTS,
        smtp=settings_for(fake_smtp, username="mailer", password=SMTP_PASSWORD),
    )
    assert sent is False
    assert fake_smtp.messages == []
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert SMTP_PASSWORD not in caplog.text


def test_dead_smtp_port_returns_false_and_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="dhis2_lmis.run.notify")
    sent = send_error_report(
        sample_report(), recipients=RECIPIENTS, smtp=Smtp(port=free_port(), timeout=2.0)
    )
    assert sent is False
    warnings = [r for r in caplog.records if r.name == "dhis2_lmis.run.notify"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "could not e-mail the error report" in warnings[0].getMessage()


def test_refused_starttls_returns_false_and_logs_warning(
    fake_smtp: LocalSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dhis2_lmis.run.notify")
    sent = send_error_report(
        sample_report(), recipients=RECIPIENTS, smtp=settings_for(fake_smtp, starttls=True)
    )
    assert sent is False
    assert fake_smtp.messages == []
    assert "could not e-mail the error report" in caplog.text


def test_ssl_against_plain_server_returns_false(
    fake_smtp: LocalSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="dhis2_lmis.run.notify")
    sent = send_error_report(
        sample_report(), recipients=RECIPIENTS, smtp=settings_for(fake_smtp, ssl=True)
    )
    assert sent is False
    assert "could not e-mail the error report" in caplog.text


def test_empty_report_sends_nothing(fake_smtp: LocalSmtpServer) -> None:
    sent = send_error_report(ErrorReport(), recipients=RECIPIENTS, smtp=settings_for(fake_smtp))
    assert sent is False
    assert fake_smtp.connections == 0


def test_no_recipients_sends_nothing(fake_smtp: LocalSmtpServer) -> None:
    sent = send_error_report(sample_report(), recipients=" ; ", smtp=settings_for(fake_smtp))
    assert sent is False
    assert fake_smtp.connections == 0


def test_frozen_settings_class_satisfies_protocol() -> None:
    settings: SmtpSettingsLike = Smtp()
    assert settings.port == 25


def test_fake_dhis2_works_without_the_smtp_extra() -> None:
    # aiosmtpd comes with the `testing` extra; FakeDhis2 and the demo must not need it.
    code = (
        "import sys; sys.modules['aiosmtpd'] = None\n"
        "from dhis2_lmis.testing import FakeDhis2\n"
        "with FakeDhis2.demo() as fake: print(fake.version)\n"
        "try:\n"
        "    from dhis2_lmis.testing import LocalSmtpServer\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, error = run.stdout.splitlines()
    assert version == "2.41.0"
    assert error.startswith("MissingExtraError LocalSmtpServer needs aiosmtpd")
    assert error.endswith("pip install 'dhis2-lmis[testing]'")
