"""The ``dhis2-lmis`` command, run through ``main([...])`` against the offline demo DHIS2."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pytest

from dhis2_lmis import Dhis2Config, Dhis2Lmis, __version__, load_customers, load_items
from dhis2_lmis.run._tabular import RECEIPTS, REQUISITIONS
from dhis2_lmis.run.cli import main
from dhis2_lmis.run.demo import run_demo
from dhis2_lmis.run.frames import to_dataframe
from dhis2_lmis.testing import DEMO, AggregateValue, FakeDhis2

WRONG_PASSWORD = "not-the-Pa55word-1234"  # must never show in any output
EXE = str(Path(sys.executable).with_name("dhis2-lmis"))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration leaks in from the developer's environment or working directory."""
    for name in ("DHIS2_LMIS_CONFIG", "DHIS2_URL", "DHIS2_USERNAME", "DHIS2_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def demo_server() -> Iterator[FakeDhis2]:
    fake = FakeDhis2.demo().start()
    try:
        yield fake
    finally:
        fake.stop()
    assert not fake.unanswered, fake.unanswered
    assert not fake.errors, fake.errors


def write_config(
    directory: Path, url: str, *, password: str = DEMO.password, extra: str = ""
) -> Path:
    path = directory / "site.toml"
    path.write_text(
        f"""
[dhis2]
url = "{url}"
username = "{DEMO.username}"
password = "{password}"
max_attempts = 1
connect_timeout = 2

[lmis]
data_set = "{DEMO.data_set}"
data_element_id_scheme = "CODE"
name_field = "Dhis2Code"

[programs]
order = "{DEMO.order_program}"
receipt = "{DEMO.receipt_program}"
str = "{DEMO.str_program}"

[data_elements.stock_on_hand]
data_element = "{DEMO.stock_on_hand_data_element}"
program_stage = "{DEMO.str_stage}"
attribute = "{DEMO.item_code_attribute}"

[data_elements.received_quantity]
data_element = "{DEMO.stock_received_data_element}"
program_stage = "{DEMO.str_stage}"
attribute = "{DEMO.item_code_attribute}"

[receipt]
consignment_data_element = "{DEMO.consignment_data_element}"

[sync]
state = "{(directory / "state.sqlite").as_posix()}"
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path, demo_server: FakeDhis2) -> Path:
    return write_config(tmp_path, demo_server.url)


@pytest.fixture
def reference_files(tmp_path: Path) -> list[str]:
    """``--items`` and ``--customers`` files describing the demo world."""
    items = tmp_path / "items.csv"
    items.write_text(
        "code,name,universal_code\n"
        + "".join(
            f"{code},{name},{code}\n"
            for code, name in zip(DEMO.item_codes, DEMO.item_names, strict=True)
        ),
        encoding="utf-8",
    )
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "code,name,Dhis2Code\n"
        + "".join(
            f"{code},Facility {code},{uid}\n"
            for code, uid in zip(DEMO.facility_codes, DEMO.facilities, strict=True)
        ),
        encoding="utf-8",
    )
    return ["--items", str(items), "--customers", str(customers)]


def completed_order_lines() -> int:
    # the demo world: six completed orders of two lines each
    return 12


# -- demo ----------------------------------------------------------------------------------------


def test_demo_exits_0_and_prints_every_summary_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for section in (
        "== Connection",
        "Connection successful",
        "== Requisitions pulled: 6",
        "== Consignment receipts pulled: 3",
        "== Stock receipts pushed to the STR program: 6 created",
        "== Stock on hand (before -> after)",
        "== Stock on hand pushed to data set",
        "== Summary",
    ):
        assert section in out
    assert "CN-2024-1001" in out
    assert "Riverside Health Centre (FAC001)" in out
    assert "with problems" not in out
    # the facilities' untouched items are pushed unchanged: said, not left to look like losses
    assert "4 ignored, 0 deleted" in out
    assert "(4 ignored: already stored with that value" in out


def test_demo_sends_nothing_but_results_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dhis2-version", "2.38"]) == 0
    captured = capsys.readouterr()
    assert "Starting an offline DHIS2 2.38" in captured.err
    assert "Starting" not in captured.out
    assert "fake DHIS2 2.38" in captured.out


def test_demo_tells_one_story_in_facility_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "LmFacility" not in out  # facilities by name everywhere, never by UID
    # each stock receipt's "before -> after" is the figure of the stock on hand section
    pushed = re.findall(r"x (\w+) at ([\w ]+?) \(stock on hand (\d+) -> (\d+)\)", out)
    assert len(pushed) == 6
    levels = {
        (name, item): (before, after)
        for name, item, before, after in re.findall(
            r"^  ([A-Z][a-z]+(?: [A-Z][a-z]+)*) +([A-Z0-9]+) +(\d+) -> (\d+)", out, re.MULTILINE
        )
    }
    for item, name, before, after in pushed:
        assert levels[(name, item)] == (before, after)


def test_demo_pushes_stock_on_hand_for_the_month_of_the_receipts() -> None:
    summary = run_demo()
    latest = max(r.completed_at for r in summary.receipts if r.completed_at is not None)
    assert summary.period == f"{latest:%Y%m}"
    assert summary.data_push.ok


def read_serve_banner(stdout: IO[str]) -> list[str]:
    lines = []
    while not (line := stdout.readline()).startswith("Press Ctrl-C") and line:
        lines.append(line.rstrip("\n"))
    return lines


def test_demo_serve_writes_a_folder_where_every_printed_command_works(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    with subprocess.Popen(
        [EXE, "demo", "--serve", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        banner = read_serve_banner(server.stdout)
        try:
            assert "serving at http://127.0.0.1:" in banner[0]
            assert f"cd {folder}" in "\n".join(banner)
            commands = [line.split() for line in banner if line.startswith("  dhis2-lmis ")]
            readers = [c for c in commands if "sync" not in c]
            syncs = [c for c in commands if "sync" in c]  # after the readers: it pushes stock
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = list(pool.map(lambda c: run_in(folder, c), readers))
            results += [run_in(folder, c) for c in syncs]
        finally:
            server.send_signal(signal.SIGINT)
            try:
                _, err = server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()  # fail, rather than wait forever for a server Ctrl-C missed
                raise
    for command, result in zip([*readers, *syncs], results, strict=True):
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
    assert len(commands) >= 8
    reports = next(r for c, r in zip(readers, results, strict=True) if "stock-reports" in c)
    assert len(reports.stdout.splitlines()) > 1  # the seeded data set values, as a table
    assert server.returncode == 130
    assert "demo server stopped" in err
    for name in ("dhis2-lmis.toml", "items.csv", "stores.csv", "customers.csv"):
        assert (folder / name).is_file()
    for name in ("packing-list.csv", "values.csv"):
        assert (folder / name).is_file()


def run_in(folder: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *command[1:]],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("DHIS2_")},
    )


def test_demo_rejects_an_unknown_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dhis2-version", "2.35"]) == 2
    assert "2.35" in capsys.readouterr().err


def test_demo_refuses_site_files_it_would_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--items", "items.csv", "demo"]) == 2
    err = capsys.readouterr().err
    assert "not --items items.csv" in err
    assert "demo --serve" in err  # where files for the other commands come from
    assert main(["demo", "--config", "site.toml", "--customers", "c.csv"]) == 2
    assert "not --config site.toml, --customers c.csv" in capsys.readouterr().err


# -- test-connection -----------------------------------------------------------------------------


def test_test_connection_with_good_credentials_exits_0(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "test-connection"]) == 0
    assert "Connection successful (DHIS2 2.41" in capsys.readouterr().out


def test_test_connection_with_wrong_password_exits_2_without_showing_it(
    tmp_path: Path,
    demo_server: FakeDhis2,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, demo_server.url, password=WRONG_PASSWORD)
    caplog.set_level(logging.DEBUG)
    assert main(["-vv", "test-connection", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert "Authentication failed" in captured.err
    assert captured.out == ""
    for text in (captured.out, captured.err, caplog.text):
        assert WRONG_PASSWORD not in text


def test_test_connection_to_a_stopped_server_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeDhis2.demo()  # bound, never started: the port refuses... or hangs, so stop it
    url = fake.url
    fake.stop()
    config = write_config(tmp_path, url)
    assert main(["--config", str(config), "test-connection"]) == 2
    assert "Could not connect" in capsys.readouterr().err


# -- configuration -------------------------------------------------------------------------------


def test_missing_configuration_exits_2_and_says_where_it_looked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["test-connection"]) == 2
    err = capsys.readouterr().err
    assert "no configuration found" in err
    assert "--config" in err
    assert "DHIS2_LMIS_CONFIG" in err
    assert "dhis2-lmis.toml" in err


def test_configuration_file_named_by_environment_is_used(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DHIS2_LMIS_CONFIG", str(config))
    assert main(["test-connection"]) == 0
    assert "Connection successful" in capsys.readouterr().out


def test_invalid_configuration_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[dhis2]\nurl = "ftp://x"\npasword = "hunter2"\n', encoding="utf-8")
    assert main(["--config", str(path), "test-connection"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "dhis2-lmis: invalid configuration:",
        '  dhis2.pasword: unknown key (typo?); did you mean "password"?',
        '  dhis2.url: must be an http:// or https:// address (got "ftp://x")',
        '  dhis2.username: required for auth = "basic"',
        '  dhis2.password: required for auth = "basic" (or password_env)',
    ]
    assert "hunter2" not in err


def test_check_prints_setup_findings_and_exits_1_when_something_would_fail(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items.csv"
    items.write_text(
        "code,name,universal_code\nAMOX250,Amoxicillin,AMOX250\nGHOST,Ghost item,NO_SUCH_DE\n",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "--items", str(items), "check"]) == 1
    captured = capsys.readouterr()
    assert "configuration: OK" in captured.out
    assert "connection: Connection successful" in captured.out
    assert "item GHOST" in captured.out
    assert "NO_SUCH_DE" in captured.out
    assert "setup problem" in captured.err


def test_configuration_from_environment_variables_alone_is_named_as_such(
    demo_server: FakeDhis2, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DHIS2_URL", demo_server.url)
    monkeypatch.setenv("DHIS2_USERNAME", DEMO.username)
    monkeypatch.setenv("DHIS2_PASSWORD", DEMO.password)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "configuration: OK (the DHIS2_* environment)" in out
    assert "dhis2-lmis.toml" not in out  # no such file was read
    assert main(["pull", "order"]) == 2
    assert "which the DHIS2_* environment does not set" in capsys.readouterr().err


def test_check_lists_each_unconfigured_part_with_the_commands_it_stops(
    tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, demo_server.url)
    text = path.read_text(encoding="utf-8")
    text = text[: text.index("[data_elements.stock_on_hand]")] + text[text.index("[receipt]") :]
    path.write_text(text, encoding="utf-8")
    assert main(["--config", str(path), "check"]) == 0
    out = capsys.readouterr().out
    assert "not configured [data_elements.stock_on_hand]" in out
    assert "refuse to run: stock-on-hand" in out
    assert "not configured [data_elements.received_quantity]" in out
    assert "sync --packing-list" in out
    assert "setup: OK for pull order" in out  # not a plain "setup: OK"
    assert main(["--config", str(path), "stock-on-hand"]) == 2
    assert "data_elements.stock_on_hand" in capsys.readouterr().err


def test_check_with_a_wrong_password_exits_2(
    tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, demo_server.url, password=WRONG_PASSWORD)
    assert main(["--config", str(config), "check"]) == 2
    captured = capsys.readouterr()
    assert "Authentication failed" in captured.err
    assert WRONG_PASSWORD not in captured.out + captured.err


# -- pull ----------------------------------------------------------------------------------------


def test_pull_order_jsonl_has_one_parseable_line_per_requisition_line(
    config: Path, reference_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), *reference_files, "pull", "order", "--format", "jsonl"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == completed_order_lines()
    first = rows[0]
    assert first["org_unit"] == DEMO.facilities[0]
    assert first["customer_code"] == DEMO.facility_codes[0]
    assert first["customer_name"] == f"Facility {DEMO.facility_codes[0]}"
    assert (first["item_code"], first["quantity"]) == ("AMOX250", "100")
    assert all(row["problems"] == "" for row in rows)


def test_pull_order_csv_parses_back_with_a_header(
    config: Path, reference_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--config", str(config), *reference_files, "pull", "order", "--format", "csv"]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == completed_order_lines()
    assert {row["item_code"] for row in rows} == set(DEMO.item_codes)


def test_pull_order_exits_1_when_a_record_has_problems(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "few-items.csv"
    items.write_text("code,name,universal_code\nAMOX250,Amoxicillin,AMOX250\n", encoding="utf-8")
    argv = ["--config", str(config), "--items", str(items), "pull", "order", "--format", "jsonl"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == completed_order_lines()  # printed regardless
    assert any("no item has universal code" in row["problems"] for row in rows)
    assert "had problems" in captured.err


def test_pull_receipt_prints_one_row_per_receipt(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "pull", "receipt", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["consignment_number"] for row in rows] == [
        "CN-2024-1001",
        "CN-2024-1002",
        "CN-2024-1003",
    ]


def test_pull_str_prints_stock_transactions_with_item_codes(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "pull", "str", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 9  # three facilities, three items with stock
    assert {row["item_code"] for row in rows} == {"AMOX250", "PARA500", "ORS200"}


def test_pull_raw_prints_events_of_the_org_unit_asked_for(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "pull", "order", "--raw", "--org-unit", DEMO.facilities[1]]
    assert main([*argv, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows
    assert {row["org_unit"] for row in rows} == {DEMO.facilities[1]}
    assert {row["status"] for row in rows} == {"COMPLETED", "ACTIVE"}


def test_pull_since_skips_older_events(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(config), "pull", "order", "--raw", "--format", "jsonl"]
    assert main([*argv, "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""


def test_pull_csv_without_records_is_just_the_header(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "pull", "receipt", "--since", "2999-01-01"]
    assert main([*argv, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [",".join(RECEIPTS.names)]


def test_pull_table_is_aligned_text(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "pull", "receipt"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["event", "org_unit"]
    assert len(lines) == 4


def test_bad_since_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "pull", "order", "--since", "yesterday"]) == 2
    assert "not an ISO date" in capsys.readouterr().err


@pytest.mark.parametrize("since", ["2026W10", "2026-W10-1", "20261101", "2026-11-01T0800"])
def test_since_takes_only_the_documented_forms_on_every_python(
    config: Path, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    # Python 3.11 reads these as dates, 3.10 refuses them: refused on both
    assert main(["--config", str(config), "pull", "order", "--since", since]) == 2
    assert f"not an ISO date or time: {since!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "since",
    ["2999-01-01", "2999-01-01T08:00", "2999-01-01 08:00:30.250Z", "2999-01-01T08:00+02:00"],
)
def test_since_takes_a_date_or_a_time_with_an_offset(
    config: Path, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    assert main(["--config", str(config), "pull", "order", "--since", since]) == 0
    assert "(no records)" in capsys.readouterr().err


def test_verbose_logs_go_to_stderr_and_stdout_stays_parseable(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-vv", "--config", str(config), "pull", "receipt", "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    assert "DEBUG dhis2_lmis" in captured.err
    assert len([json.loads(line) for line in captured.out.splitlines()]) == 3


def test_pull_stock_reports_prints_one_row_per_reported_value(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    for code, value in ((DEMO.soh_data_elements[0], 150), (DEMO.soh_data_elements[1], 0)):
        demo_server.add_data_value(code, "202201", DEMO.facilities[0], value)
    items = tmp_path / "soh-items.csv"
    items.write_text(
        "code,name,universal_code\n"
        + "".join(
            f"{code},{name},{de}\n"
            for code, name, de in zip(
                DEMO.item_codes, DEMO.item_names, DEMO.soh_data_element_codes, strict=True
            )
        ),
        encoding="utf-8",
    )
    argv = ["--config", str(config), "--items", str(items), "pull", "stock-reports"]
    argv += ["--period", "202201", "--org-unit", DEMO.facilities[0], "--format", "jsonl"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(row["item_code"], row["value"]) for row in rows} == {
        ("AMOX250", "150"),
        ("PARA500", "0"),
    }
    assert {row["period"] for row in rows} == {"202201"}


def test_pull_stock_reports_without_period_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "pull", "stock-reports"]) == 2
    assert "--period" in capsys.readouterr().err


def test_pull_stock_reports_of_a_period_type_the_data_set_does_not_use_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the demo data set is Monthly: a weekly id would read nothing and print "(no records)"
    argv = ["--config", str(config), "pull", "stock-reports", "--period", "2026W10"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "period 2026W10 is Weekly, but the data set's periods are Monthly" in err


def test_pull_order_of_an_unknown_org_unit_names_the_option(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "pull", "order", "--org-unit", "NoSuchOU11"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--org-unit NoSuchOU11" in err
    assert "dhis2-lmis check" in err


# -- stock-on-hand -------------------------------------------------------------------------------


def test_stock_on_hand_prints_the_latest_level_per_item(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "stock-on-hand", "--org-unit", DEMO.facilities[0]]
    assert main([*argv, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["item_code"]: row["stock_on_hand"] for row in rows} == {
        "AMOX250": "100",
        "PARA500": "110",
        "ORS200": "120",
    }


# -- the same columns as to_dataframe ------------------------------------------------------------


def fetched_by_python(lmis: Dhis2Lmis, command: tuple[str, ...]) -> Iterable[Any]:
    """What the library returns for the records ``command`` prints."""
    if command == ("stock-on-hand",):
        return lmis.fetch_stock_on_hand()
    if command[1] == "stock-reports":
        return lmis.fetch_stock_reports("202611", org_unit=DEMO.facilities[0])
    if "--raw" in command:
        return lmis.pull("order")
    fetch = {
        "order": lmis.fetch_completed_requisitions,
        "receipt": lmis.fetch_completed_receipts,
        "str": lmis.fetch_stock_transactions,
    }[command[1]]
    return fetch()


def same_value(text: str, value: object, dtype: object) -> bool:
    """Whether the command's text says what the frame's typed cell holds."""
    if pd.isna(value):
        return text == ""
    if isinstance(dtype, pd.BooleanDtype):
        return text == str(value).lower()
    if isinstance(dtype, (pd.Float64Dtype, pd.Int64Dtype)):
        return Decimal(text) == Decimal(str(value))
    if isinstance(value, pd.Timestamp):
        return pd.Timestamp(text) == value
    return text == value


@pytest.mark.parametrize(
    "command",
    [
        ("pull", "order", "--raw"),
        ("pull", "order"),
        ("pull", "receipt"),
        ("pull", "str"),
        ("stock-on-hand",),
        ("pull", "stock-reports", "--period", "202611", "--org-unit", DEMO.facilities[0]),
    ],
    ids=lambda command: " ".join(command[:3]),
)
def test_command_prints_the_columns_and_values_of_to_dataframe(
    command: tuple[str, ...],
    config: Path,
    reference_files: list[str],
    demo_server: FakeDhis2,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for code, value in ((DEMO.soh_data_elements[0], 150), (DEMO.soh_data_elements[1], 0)):
        demo_server.add_data_value(code, "202611", DEMO.facilities[0], value)
    references = dict(zip(reference_files[::2], reference_files[1::2], strict=True))
    with Dhis2Lmis(
        Dhis2Config.from_file(config),
        items=load_items(references["--items"]),
        customers=load_customers(references["--customers"]),
    ) as lmis:
        frame = to_dataframe(fetched_by_python(lmis, command))
    with_problems = "problems" in frame and bool(frame["problems"].notna().any())

    code = main(["--config", str(config), *reference_files, *command, "--format", "csv"])

    assert code == (1 if with_problems else 0)
    printed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert printed[0] == list(frame.columns)
    assert len(printed) - 1 == len(frame) > 0
    differences = [
        (n, column, text, frame[column].iloc[n])
        for n, row in enumerate(printed[1:])
        for column, text in zip(printed[0], row, strict=True)
        if not same_value(text, frame[column].iloc[n], frame[column].dtype)
    ]
    assert differences == []


# -- push-values ---------------------------------------------------------------------------------


def write_values(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "values.csv"
    path.write_text("data_element,value,org_unit,comment\n" + "".join(rows), encoding="utf-8")
    return path


def test_push_values_imports_the_csv_and_prints_the_summary(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},counted\n",
        f"{DEMO.soh_data_element_codes[1]},80,{DEMO.facilities[0]},\n",
    )
    assert main(["--config", str(config), "push-values", str(values), "--period", "202201"]) == 0
    assert "SUCCESS: 2 imported" in capsys.readouterr().out
    stored = {(v.data_element, v.period, v.value) for v in demo_server.data_values}
    assert (DEMO.soh_data_elements[0], "202201", "150") in stored


def test_push_values_with_unknown_data_element_exits_1_and_prints_the_conflict(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},\n",
        f"NO_SUCH_ELEMENT,3,{DEMO.facilities[0]},\n",
    )
    assert main(["--config", str(config), "push-values", str(values), "--period", "202201"]) == 1
    out = capsys.readouterr().out
    assert "1 imported" in out
    assert "NO_SUCH_ELEMENT" in out
    assert "conflict" in out


def test_push_values_dry_run_saves_nothing(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(tmp_path, f"{DEMO.soh_data_element_codes[0]},150,,\n")
    argv = ["--config", str(config), "push-values", str(values), "--dry-run"]
    assert main([*argv, "--period", "202201", "--org-unit", DEMO.facilities[2]]) == 0
    assert "(dry run)" in capsys.readouterr().out
    assert not [v for v in demo_server.data_values if v.period == "202201"]


@pytest.mark.parametrize(("period", "kind"), [("2026W10", "Weekly"), ("20261101", "Daily")])
def test_push_values_keeps_a_period_id_that_looks_like_a_date_as_given(
    config: Path,
    tmp_path: Path,
    demo_server: FakeDhis2,
    capsys: pytest.CaptureFixture[str],
    period: str,
    kind: str,
) -> None:
    # Python 3.11 reads 2026W10 and 20261101 as dates: the push must not quietly move the
    # values into the data set's month holding that day
    values = write_values(tmp_path, f"{DEMO.soh_data_element_codes[0]},150,,\n")
    argv = ["--config", str(config), "push-values", str(values), "--preflight"]
    stored = list(demo_server.data_values)
    assert main([*argv, "--period", period, "--org-unit", DEMO.facilities[2]]) == 1
    err = capsys.readouterr().err
    assert f"period {period} is {kind}, but data set" in err
    assert "nothing was sent" in err
    assert list(demo_server.data_values) == stored


def test_push_values_without_preflight_refuses_a_period_the_data_set_does_not_use(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    # DHIS2 stores a weekly value for a monthly data set unless the push sends strictPeriods;
    # the monthly forms and reports would never read it
    values = write_values(tmp_path, f"{DEMO.soh_data_element_codes[0]},150,,\n")
    argv = ["--config", str(config), "push-values", str(values), "--period", "2026W10"]
    assert main([*argv, "--org-unit", DEMO.facilities[2]]) == 1
    captured = capsys.readouterr()
    assert "E7632" in captured.out + captured.err
    assert not [v for v in demo_server.data_values if v.period == "2026W10"]


def test_push_values_reports_bad_rows_on_stderr_and_exits_1(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},\n",
        f"{DEMO.soh_data_element_codes[1]},lots,{DEMO.facilities[0]},\n",
    )
    assert main(["--config", str(config), "push-values", str(values), "--period", "202201"]) == 1
    captured = capsys.readouterr()
    assert "values.csv:3" in captured.err
    assert "SUCCESS: 1 imported" in captured.out


def test_push_values_preflight_sends_nothing_when_a_value_would_be_lost(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},\n",
        f"{DEMO.soh_data_element_codes[0]},90,{DEMO.district},not in the data set\n",
    )
    argv = ["--config", str(config), "push-values", str(values), "--period", "202201"]
    assert main([*argv, "--preflight"]) == 1
    assert "nothing was sent" in capsys.readouterr().err
    assert not [v for v in demo_server.data_values if v.period == "202201"]


def pushed(fake: FakeDhis2, period: str = "202201") -> list[AggregateValue]:
    """The values of ``period``: the demo world holds its own reports for recent months."""
    return [v for v in fake.data_values if v.period == period]


def test_push_values_preflight_refuses_a_fraction_for_a_whole_number_element_by_line(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},\n",
        f"{DEMO.soh_data_element_codes[1]},12.6,{DEMO.facilities[0]},\n",
    )
    argv = ["--config", str(config), "push-values", str(values), "--period", "202201"]
    assert main([*argv, "--preflight"]) == 1
    err = capsys.readouterr().err
    assert "values.csv:3 ('12.6'): not a whole number of 0 or more" in err
    assert "nothing was sent" in err and "round_off" in err
    assert pushed(demo_server) == []
    assert main(argv) == 1  # without the preflight DHIS2 refuses that row itself
    out = capsys.readouterr().out
    assert "E7619" in out and "values.csv:3)" in out
    assert [v.value for v in pushed(demo_server)] == ["150"]


def test_push_values_preflight_sends_nothing_when_a_row_cannot_be_read(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    """One rule with the Python API: under --preflight a refused row stops the whole push."""
    values = write_values(
        tmp_path,
        f"{DEMO.soh_data_element_codes[0]},150,{DEMO.facilities[0]},\n",
        f"{DEMO.soh_data_element_codes[1]},lots,{DEMO.facilities[0]},\n",
    )
    argv = ["--config", str(config), "push-values", str(values), "--period", "202201"]
    assert main([*argv, "--preflight"]) == 1
    err = capsys.readouterr().err
    assert "values.csv:3]: value 'lots'" in err and "nothing was sent" in err
    assert pushed(demo_server) == []


def test_push_values_csv_attribute_option_combo_column_keeps_values_apart(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_server.add_category_combo(
        "CcFunding01", "FUNDING", "Funding", {"AocFundA001": "FUND_A", "AocFundB001": "FUND_B"}
    )
    values = tmp_path / "values.csv"
    element, facility = DEMO.soh_data_element_codes[0], DEMO.facilities[0]
    values.write_text(
        "data_element,value,org_unit,attribute_option_combo\n"
        f"{element},10,{facility},AocFundA001\n"
        f"{element},20,{facility},AocFundB001\n"
        f"{element},30,{facility},\n",
        encoding="utf-8",
    )
    argv = ["--config", str(config), "push-values", str(values), "--period", "202201"]
    assert main(argv) == 0
    assert "SUCCESS: 3 imported" in capsys.readouterr().out
    stored = {v.attribute_option_combo: v.value for v in pushed(demo_server)}
    assert stored == {"AocFundA001": "10", "AocFundB001": "20", "HllvX50cXC0": "30"}


def test_push_values_without_period_is_a_usage_error(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = write_values(tmp_path, f"{DEMO.soh_data_element_codes[0]},1,{DEMO.facilities[0]},\n")
    assert main(["--config", str(config), "push-values", str(values)]) == 2
    assert "--period" in capsys.readouterr().err


def test_push_values_of_a_missing_file_exits_2(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "push-values", "nowhere.csv", "--period", "202201"]) == 2
    assert "cannot read nowhere.csv" in capsys.readouterr().err


# -- sync ----------------------------------------------------------------------------------------


def test_sync_once_hands_each_completed_event_over_once(
    config: Path, reference_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), *reference_files, "sync", "--once"]
    assert main(argv) == 0
    first = capsys.readouterr()
    rows = [json.loads(line) for line in first.out.splitlines()]
    assert sum(row["program"] == "order" for row in rows) == completed_order_lines()
    assert sum(row["program"] == "receipt" for row in rows) == 3
    columns = {row["program"]: list(row) for row in rows}  # what pull order / receipt print
    assert columns["order"] == ["program", "is_update", *REQUISITIONS.names]
    assert columns["receipt"] == ["program", "is_update", *RECEIPTS.names]
    assert "9 handled" in first.err
    assert main(argv) == 0
    second = capsys.readouterr()
    assert second.out == ""
    assert "0 handled" in second.err


def test_sync_pushes_packing_lists_of_received_consignments(
    config: Path, tmp_path: Path, demo_server: FakeDhis2, capsys: pytest.CaptureFixture[str]
) -> None:
    packing = tmp_path / "packing.csv"
    packing.write_text(
        "consignment,item_code,quantity\nCN-2024-1001,AMOX250,25\nCN-2024-1002,PARA500,10\n",
        encoding="utf-8",
    )
    argv = ["--config", str(config), "sync", "--programs", "receipt"]
    # CN-2024-1003 is not on the list: its receipt fails (exit 1) instead of being dropped
    assert main([*argv, "--packing-list", str(packing)]) == 1
    first = capsys.readouterr()
    assert "2 handled" in first.err and "1 failed" in first.err
    assert "2 stock receipts pushed" in first.err
    assert "consignment CN-2024-1003" in first.err and "not on the packing list" in first.err
    assert "CN-2024-1003" not in first.out  # not handed over either

    with packing.open("a", encoding="utf-8") as handle:
        handle.write("CN-2024-1003,ZINC20,7\n")
    assert main([*argv, "--packing-list", str(packing)]) == 0
    second = capsys.readouterr()
    assert "1 handled" in second.err and "1 stock receipts pushed" in second.err
    assert [json.loads(line)["consignment_number"] for line in second.out.splitlines()] == [
        "CN-2024-1003"
    ]
    received = [
        e for e in demo_server.events.values() if DEMO.stock_received_data_element in e.data_values
    ]
    assert sorted(e.data_values[DEMO.stock_received_data_element] for e in received) == [
        "10",
        "25",
        "7",
    ]


def test_quiet_sync_still_says_when_its_error_mail_could_not_be_sent(
    tmp_path: Path,
    demo_server: FakeDhis2,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    smtp = (
        f'[smtp]\nhost = "127.0.0.1"\nport = {closed}\ntimeout = 2\nsender = "lmis@example.org"'
        '\nusername = "mailer"\npassword = "Mail-Secret-9"'
    )
    config = write_config(tmp_path, demo_server.url, extra=smtp)
    monkeypatch.setenv("DHIS2_LMIS_LMIS__ERROR_EMAILS", "ops@example.org")
    packing = tmp_path / "packing.csv"
    packing.write_text("consignment,item_code,quantity\nCN-2024-1001,AMOX250,25\n", "utf-8")
    argv = ["--config", str(config), "-q", "sync", "--programs", "receipt"]
    assert main([*argv, "--packing-list", str(packing)]) == 1  # two consignments not listed
    err = capsys.readouterr().err
    assert "could not e-mail the error report" in err  # -q hides warnings, not this one
    assert "Mail-Secret-9" not in err
    assert logging.getLogger("dhis2_lmis.run.notify").level == logging.NOTSET  # undone


def test_sync_rejects_unknown_programs(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "sync", "--programs", "order,str"]) == 2
    assert "order and/or receipt" in capsys.readouterr().err


# -- help and version ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["test-connection"],
        ["check"],
        ["pull"],
        ["stock-on-hand"],
        ["push-values"],
        ["sync"],
    ],
)
def test_every_help_exits_0_and_shows_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out
    assert "dhis2-lmis" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_flag_takes_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out.lower()
    for word in ("--password", "--token", "--secret"):
        assert word not in text


def test_python_m_dhis2_lmis_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dhis2_lmis", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"dhis2-lmis {__version__}"


# -- interruption and progress -------------------------------------------------------------------


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(**_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dhis2_lmis.run.demo.run_demo", interrupted)
    assert main(["demo"]) == 130
    assert "interrupted" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_stderr_only(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--config", str(config), "pull", "str", "--format", "jsonl"]) == 0
    assert "records" in terminal.getvalue()
    assert len(capsys.readouterr().out.splitlines()) == 9


def test_no_progress_when_stderr_is_not_a_terminal(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "pull", "str", "--format", "jsonl"]) == 0
    assert capsys.readouterr().err == ""


def test_sync_forever_stops_cleanly_on_ctrl_c(config: Path) -> None:
    command = [sys.executable, "-m", "dhis2_lmis", "--config", str(config), "sync", "--forever"]
    with subprocess.Popen(
        [*command, "--programs", "receipt"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        handed_over = [json.loads(process.stdout.readline()) for _ in range(3)]
        process.send_signal(signal.SIGINT)  # the first run is done: the loop is waiting
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert [row["is_update"] for row in handed_over] == [False, False, False]
    assert out == ""
    assert "3 handled" in err
    assert "dhis2-lmis: interrupted: " in err  # with what was left for the next run
