"""The real ``dhis2-lmis`` executable against bad input: never a traceback, always a way out.

Each row is one mistake an operator makes (issue 13, item 4). The command runs as a subprocess,
as from a shell, against one offline DHIS2 shared by the module. Every row asserts what the
operator relies on:

* no ``Traceback`` on stderr;
* a message on stderr naming the problem (and, where the row says, what to do);
* exit 2 for usage and configuration, 1 for problems found while running, never 0 when
  something was not done;
* nothing but results on stdout, and never the password.

Rows run concurrently within a group (each subprocess mostly waits on its own start-up), so
the module stays fast; a failing group lists every failing row.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dhis2_lmis.run.cli import main
from dhis2_lmis.testing import DEMO, FakeDhis2

EXE = str(Path(sys.executable).with_name("dhis2-lmis"))
WRONG_PASSWORD = "Wr0ng-pa55word-77"  # must never show in any output
LOCKABLE_USER = "lockable"  # its own user, so the row can count its login attempts

# -- the configuration every row starts from ------------------------------------------------------

PROGRAMS = f"""
[programs]
order = "{DEMO.order_program}"
receipt = "{DEMO.receipt_program}"
str = "{DEMO.str_program}"
"""
TABLE = f"""
[data_elements.stock_on_hand]
data_element = "{DEMO.stock_on_hand_data_element}"
program_stage = "{DEMO.str_stage}"
attribute = "{DEMO.item_code_attribute}"

[data_elements.received_quantity]
data_element = "{DEMO.stock_received_data_element}"
program_stage = "{DEMO.str_stage}"
attribute = "{DEMO.item_code_attribute}"
"""
RECEIPT = f"""
[receipt]
consignment_data_element = "{DEMO.consignment_data_element}"
"""
SERVER = f"""[dhis2]
url = "{{url}}"
username = "{DEMO.username}"
password = "{DEMO.password}"
max_attempts = 1
connect_timeout = 3
"""
LMIS = f"""
[lmis]
data_set = "{DEMO.data_set}"
data_element_id_scheme = "CODE"
"""
SYNC = """
[sync]
state = "{dir}/state.sqlite"
"""
GOOD = SERVER + LMIS + PROGRAMS + TABLE + RECEIPT + SYNC
SOH = DEMO.soh_data_element_codes
FAC = DEMO.facilities[0]
PACKING_OK = "consignment,item_code,quantity\nCN-2024-1001,AMOX250,5\nCN-2024-1002,PARA500,6\n"


@dataclass(frozen=True)
class Row:
    """One bad input: the command line, the files it finds, and what it must answer."""

    name: str
    argv: tuple[str, ...]
    exit: int
    says: tuple[str, ...]
    config: str | bytes | None = GOOD  # site.toml ({url}, {closed}, {dir} filled in)
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


def cfg(*argv: str) -> tuple[str, ...]:
    return ("--config", "site.toml", *argv)


def values(*lines: str) -> dict[str, str]:
    return {"values.csv": "data_element,value,org_unit\n" + "".join(f"{x}\n" for x in lines)}


GROUPS: dict[str, tuple[Row, ...]] = {
    "configuration file": (
        Row(
            "config missing",
            ("--config", "nowhere.toml", "check"),
            2,
            ("nowhere.toml", "does not exist"),
        ),
        Row("no config anywhere", ("test-connection",), 2, ("no configuration found", "--config")),
        Row("config is a folder", ("--config", ".", "check"), 2, ("is a folder",)),
        Row("config empty", cfg("test-connection"), 2, ("dhis2.url",), config=""),
        Row("config not TOML", cfg("check"), 2, ("toml",), config="[dhis2\nurl = 'x'\n"),
        Row(
            "config in UTF-16",
            cfg("check"),
            2,
            ("utf-8",),
            config=GOOD.encode("utf-16"),
        ),
        Row(
            "config with a UTF-8 BOM works",
            cfg("test-connection"),
            0,
            (),
            config=b"\xef\xbb\xbf" + GOOD.encode(),
        ),
        Row(
            "typo in a key",
            cfg("check"),
            2,
            ("dhis2.pasword", "password"),
            config=GOOD.replace("password =", "pasword ="),
        ),
        Row(
            "wrong type",
            cfg("test-connection"),
            2,
            ("max_attempts",),
            config=GOOD.replace("max_attempts = 1", 'max_attempts = "three"'),
        ),
        Row(
            "url without scheme",
            cfg("test-connection"),
            2,
            ("dhis2.url", "http"),
            config=GOOD.replace("{url}", "{bare}"),
        ),
        Row(
            "section of the wrong shape",
            cfg("check"),
            2,
            ("programs",),
            config=SERVER + SYNC + 'programs = "order"\n',
        ),
        Row(
            "unknown section",
            cfg("check"),
            2,
            ("dhis3",),
            config=GOOD + "\n[dhis3]\nurl = 'x'\n",
        ),
        Row(
            "password variable not set",
            cfg("test-connection"),
            2,
            ("DHIS2_LMIS_TEST_UNSET_PW",),
            config=GOOD.replace(
                f'password = "{DEMO.password}"', 'password_env = "DHIS2_LMIS_TEST_UNSET_PW"'
            ),
        ),
    ),
    "connection": (
        Row(
            "closed port",
            cfg("test-connection"),
            2,
            ("127.0.0.1:{closed_port}", "refused"),
            config=GOOD.replace("{url}", "{closed}"),
        ),
        Row(
            "wrong password, test-connection",
            cfg("test-connection"),
            2,
            ("authentication",),
            config=GOOD.replace(DEMO.password, WRONG_PASSWORD),
        ),
        Row(
            "wrong password, pull",
            cfg("pull", "receipt"),
            2,
            ("authentication",),
            config=GOOD.replace(DEMO.password, WRONG_PASSWORD),
        ),
        Row(
            "wrong password, check",
            cfg("check"),
            2,
            ("authentication",),
            config=GOOD.replace(DEMO.password, WRONG_PASSWORD),
        ),
    ),
    "configured parts": (
        Row(
            "unknown program",
            cfg("pull", "order"),
            2,
            ("programs.order", "check"),
            config=GOOD.replace(DEMO.order_program, "NoSuchProg1"),
        ),
        Row(
            "sync of an unconfigured program",
            cfg("sync", "--programs", "order,receipt"),
            2,
            ("programs.receipt",),
            config=GOOD.replace(f'receipt = "{DEMO.receipt_program}"\n', ""),
        ),
        Row(
            "sync with no program configured",
            cfg("sync"),
            2,
            ("programs.order", "programs.receipt"),
            config=SERVER + LMIS + SYNC,
        ),
        Row(
            "stock-on-hand without the data element table",
            cfg("stock-on-hand"),
            2,
            ("data_elements.stock_on_hand", "check"),
            config=SERVER + LMIS + PROGRAMS + SYNC,
        ),
        Row(
            "STR push without the data element table",
            cfg("sync", "--packing-list", "packing.csv"),
            2,
            ("data_elements.received_quantity",),
            config=SERVER + LMIS + PROGRAMS + RECEIPT + SYNC,
            files={"packing.csv": PACKING_OK},
        ),
        Row(
            "pull of an unconfigured program",
            cfg("pull", "str"),
            2,
            ("programs.str",),
            config=GOOD.replace(f'str = "{DEMO.str_program}"\n', ""),
        ),
        Row(
            "stock reports without a data set",
            cfg("pull", "stock-reports", "--period", "202611"),
            2,
            ("lmis.data_set",),
            config=SERVER + PROGRAMS + SYNC,
        ),
        Row(
            "push-values without a data set",
            cfg("push-values", "values.csv", "--period", "202611"),
            2,
            ("lmis.data_set",),
            config=SERVER + PROGRAMS + SYNC,
            files=values(f"{SOH[0]},1,{FAC}"),
        ),
        Row(
            "packing list for a sync without receipts",
            cfg("sync", "--programs", "order", "--packing-list", "packing.csv"),
            2,
            ("--packing-list",),
            files={"packing.csv": PACKING_OK},
        ),
    ),
    "arguments": (
        Row(
            "month out of range",
            cfg("pull", "stock-reports", "--period", "2024-13"),
            2,
            ("--period: period id '2024-13': month 13 is out of range",),
        ),
        Row(
            "month out of range in the period column",
            cfg("push-values", "values.csv"),
            2,
            ("values.csv, period column: period id '2024-13': month 13",),
            files={"values.csv": f"data_element,value,org_unit,period\n{SOH[0]},5,{FAC},2024-13\n"},
        ),
        Row(
            "period that is no period",
            cfg("push-values", "values.csv", "--period", "soon"),
            2,
            ("period", "soon"),
            files=values(f"{SOH[0]},1,{FAC}"),
        ),
        Row(
            "bad --since",
            cfg("pull", "order", "--since", "yesterday"),
            2,
            ("--since", "2026-11-01"),
        ),
        Row("unknown command", ("frobnicate",), 2, ("invalid choice",), config=None),
        Row("unknown sync program", cfg("sync", "--programs", "str"), 2, ("order and/or receipt",)),
        Row(
            "unsupported demo version",
            ("demo", "--dhis2-version", "2.35"),
            2,
            ("2.35", "2.36"),
            config=None,
        ),
        Row(
            "demo version that is no version",
            ("demo", "--dhis2-version", "latest"),
            2,
            ("latest",),
            config=None,
        ),
        Row(
            "global --version given to demo",
            ("demo", "--version", "2.39"),
            2,
            ("--version",),
            config=None,
        ),
        Row("--dir without --serve", ("demo", "--dir", "x"), 2, ("--serve",), config=None),
        Row(
            "--layout with --serve",
            ("demo", "--serve", "--layout", "template"),
            2,
            ("--layout", "--serve"),
            config=None,
        ),
        Row("--dir that is a file", ("demo", "--serve", "--dir", "site.toml"), 2, ("is a file",)),
    ),
    "files": (
        Row(
            "items file missing", (*cfg("--items", "items.csv"), "pull", "order"), 2, ("items.csv",)
        ),
        Row(
            "customers file without its columns",
            (*cfg("--customers", "customers.csv"), "pull", "order"),
            2,
            ("customers.csv",),
            files={"customers.csv": "who,where\nFAC001,LmFacility1\n"},
        ),
        Row(
            "values: a value that is no number",
            cfg("push-values", "values.csv", "--period", "202201"),
            1,
            ("values.csv:3", "lots"),
            files=values(f"{SOH[0]},5,{FAC}", f"{SOH[1]},lots,{FAC}"),
        ),
        Row(
            "values: separated by semicolons",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("separated by ';'", "comma"),
            files={"values.csv": f"data_element;value;org_unit\n{SOH[0]};5;{FAC}\n"},
        ),
        Row(
            "values: a row without its value",
            cfg("push-values", "values.csv", "--period", "202201"),
            1,
            ("values.csv:3: no value for data element", "fill the value column"),
            files=values(f"{SOH[0]},5,{FAC}", f"{SOH[1]},,{FAC}"),
        ),
        Row(
            "items: separated by tabs",
            (*cfg("--items", "items.csv"), "pull", "order"),
            2,
            ("--items items.csv", "separated by a tab", "comma-separated"),
            files={"items.csv": "code\tname\tuniversal_code\nAMOX250\tAmoxicillin\tAMOX250\n"},
        ),
        Row(
            "customers: file missing",
            (*cfg("--customers", "customers.csv"), "pull", "order"),
            2,
            ("customers.csv: cannot read: No such file or directory",),
        ),
        Row(
            "values: a column missing",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("missing column", "value"),
            files={"values.csv": f"data_element,org_unit\n{SOH[0]},{FAC}\n"},
        ),
        Row(
            "values: unknown data element code",
            cfg("push-values", "values.csv", "--period", "202201"),
            1,
            ("NO_SUCH_CODE",),
            files=values(f"{SOH[0]},5,{FAC}", f"NO_SUCH_CODE,5,{FAC}"),
        ),
        Row(
            "values: file missing",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("values.csv",),
        ),
        Row(
            "values: saved as UTF-16",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("utf-8",),
            files={
                "values.csv": f"data_element,value,org_unit\n{SOH[0]},5,{FAC}\n".encode("utf-16")
            },
        ),
        Row(
            "values: no org unit anywhere",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("--org-unit", "org_unit column"),
            files={"values.csv": f"data_element,value\n{SOH[0]},5\n"},
        ),
        Row(
            "items: a packing list given as items",
            (*cfg("--items", "packing.csv"), "pull", "order"),
            2,
            ("--items packing.csv", "code"),
            files={"packing.csv": PACKING_OK},
        ),
        Row(
            "values: empty file",
            cfg("push-values", "values.csv", "--period", "202201"),
            2,
            ("empty",),
            files={"values.csv": ""},
        ),
        Row(
            "packing list: quantity that is no number",
            cfg("sync", "--packing-list", "packing.csv"),
            2,
            ("packing.csv:2", "lots"),
            files={"packing.csv": "consignment,item_code,quantity\nCN-2024-1001,AMOX250,lots\n"},
        ),
        Row(
            "packing list: separated by semicolons",
            cfg("sync", "--packing-list", "packing.csv"),
            2,
            ("separated by ';'",),
            files={"packing.csv": "consignment;item_code;quantity\nCN-2024-1001;AMOX250;5\n"},
        ),
        Row(
            "packing list: a consignment missing",
            cfg("sync", "--programs", "receipt", "--packing-list", "packing.csv"),
            1,
            ("CN-2024-1003", "not on the packing list"),
            files={"packing.csv": PACKING_OK},
        ),
        Row(
            "packing list: unknown item code",
            cfg("sync", "--programs", "receipt", "--packing-list", "packing.csv"),
            1,
            ("NOSUCHITEM",),
            files={
                "packing.csv": PACKING_OK.replace("PARA500", "NOSUCHITEM")
                + "CN-2024-1003,AMOX250,1\n"
            },
        ),
    ),
    "state file": (
        Row(
            "state file corrupt",
            cfg("sync", "--programs", "order"),
            2,
            ("state.sqlite", "left"),
            files={"state.sqlite": b"this is not a database " * 50},
        ),
        Row(
            "state file is a folder",
            cfg("sync", "--programs", "order"),
            2,
            ("state.sqlite", "directory"),
            files={"state.sqlite/keep": ""},
        ),
        Row(
            "state file where nobody may write",  # /sys refuses new files, even to root
            cfg("sync", "--programs", "order"),
            2,
            ("/sys/dhis2-lmis-test.sqlite", "write"),
            config=GOOD.replace("{dir}/state.sqlite", "/sys/dhis2-lmis-test.sqlite"),
        ),
        Row(
            "state folder missing",
            cfg("sync", "--programs", "order"),
            2,
            ("does not exist",),
            config=GOOD.replace("{dir}/state.sqlite", "{dir}/gone/state.sqlite"),
        ),
    ),
}


# -- running a row -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDhis2]:
    fake = FakeDhis2.demo().start()
    fake.add_user(LOCKABLE_USER, DEMO.password, org_units=(DEMO.country,))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(extra: Mapping[str, str] = {}) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DHIS2_", "PYTHON"))}
    return {**env, "PYTHONIOENCODING": "utf-8", **extra}


def run_row(row: Row, folder: Path, url: str, port: int) -> list[str]:
    """Run one row in its own folder; return what is wrong (empty: the row holds)."""
    folder.mkdir()
    fill = {
        "url": url,
        "bare": url.split("://", 1)[1],
        "closed": f"http://127.0.0.1:{port}",
        "dir": folder.as_posix(),
    }
    if isinstance(row.config, str):
        (folder / "site.toml").write_text(_filled(row.config, fill), encoding="utf-8")
    elif row.config is not None:  # a row about the encoding: fill the text, keep the bytes
        bom = row.config.startswith(b"\xef\xbb\xbf")
        encoding = "utf-8-sig" if bom else "utf-16"
        text = _filled(row.config.decode(encoding), fill)
        (folder / "site.toml").write_bytes(text.encode(encoding))
    for name, content in row.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    before = {p: p.read_bytes() for p in folder.rglob("*.sqlite") if p.is_file()}
    result = subprocess.run(
        [EXE, *row.argv],
        cwd=folder,
        env=environment(row.env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    err, out = result.stderr, result.stdout
    wrong = []
    if "Traceback" in err:
        wrong.append("a traceback")
    if result.returncode != row.exit:
        wrong.append(f"exit {result.returncode}, not {row.exit}")
    for said in row.says:
        text = said.replace("{closed_port}", str(port))
        if text.lower() not in err.lower():
            wrong.append(f"stderr lacks {text!r}")
    if row.exit and not any(line.startswith("dhis2-lmis") for line in err.splitlines()):
        wrong.append("no 'dhis2-lmis...' message line on stderr")
    if "dhis2-lmis:" in out:
        wrong.append("a problem printed on stdout")
    if WRONG_PASSWORD in out + err:
        wrong.append("the password was shown")
    for path, content in before.items():
        if path.read_bytes() != content:
            wrong.append(f"{path.name} was changed")
    if wrong:
        wrong.append(f"stderr was:\n{err}")
    return wrong


def _filled(text: str, fill: Mapping[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace("{" + key + "}", value)
    return text


@pytest.mark.parametrize("group", list(GROUPS))
def test_bad_input_gets_a_message_and_the_right_exit_code(
    group: str, server: FakeDhis2, closed_port: int, tmp_path: Path
) -> None:
    rows = GROUPS[group]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(
            lambda n_row: run_row(n_row[1], tmp_path / f"row{n_row[0]}", server.url, closed_port),
            enumerate(rows),
        )
        failures = {row.name: wrong for row, wrong in zip(rows, results, strict=True) if wrong}
    assert not failures, "\n\n".join(f"[{name}] " + "; ".join(w) for name, w in failures.items())


def test_there_are_at_least_forty_rows() -> None:
    assert sum(len(rows) for rows in GROUPS.values()) >= 40


def test_unknown_host_names_the_host_and_exits_2(
    tmp_path: Path,
    no_such_host: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In this process, not a child: the host name's look-up is answered here, not by DNS."""
    write_config(tmp_path, f"http://{no_such_host}")
    monkeypatch.chdir(tmp_path)
    assert main(list(cfg("pull", "order"))) == 2
    err = capsys.readouterr().err
    assert f"cannot reach {no_such_host}:80 (host name not resolved)" in err
    assert "Traceback" not in err


# -- runs that end early -------------------------------------------------------------------------


def write_config(folder: Path, url: str, text: str = GOOD) -> None:
    (folder / "site.toml").write_text(
        text.replace("{url}", url).replace("{dir}", folder.as_posix()), encoding="utf-8"
    )


def test_refused_credentials_stop_the_sync_after_one_request(
    server: FakeDhis2, tmp_path: Path
) -> None:
    # DHIS2 locks an account after a few failed logins: one refusal must end the whole run
    write_config(
        tmp_path,
        server.url,
        GOOD.replace(f'username = "{DEMO.username}"', f'username = "{LOCKABLE_USER}"').replace(
            DEMO.password, WRONG_PASSWORD
        ),
    )
    result = subprocess.run(
        [EXE, "--config", "site.toml", "sync"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    token = base64.b64encode(f"{LOCKABLE_USER}:{WRONG_PASSWORD}".encode()).decode()
    attempts = [r for r in server.requests if token in r.headers.get("Authorization", "")]
    assert len(attempts) == 1
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "refused the credentials" in result.stderr
    assert WRONG_PASSWORD not in result.stderr + result.stdout
    assert result.stdout == ""


def test_output_closed_by_head_stops_quietly(tmp_path: Path) -> None:
    # more than a pipe buffer of output, so the reader really leaves before the end
    with FakeDhis2.demo() as fake:
        for n in range(1500):
            fake.add_event(
                None,
                DEMO.order_program,
                DEMO.facilities[n % 3],
                status="COMPLETED",
                data_values={DEMO.order_data_elements[0]: n + 1},
            )
        write_config(tmp_path, fake.url)
        with subprocess.Popen(
            [EXE, "--config", "site.toml", "pull", "order", "--format", "jsonl"],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.readline().startswith("{")
            process.stdout.close()  # what `| head -1` does after its line
            err = process.stderr.read()
            process.wait(timeout=60)
    assert err == ""  # quiet: no traceback, no error per remaining record
    assert process.returncode == 141  # never 0: not everything was written


def test_ctrl_c_mid_sync_exits_130_and_says_what_was_not_done(
    server: FakeDhis2, tmp_path: Path
) -> None:
    write_config(tmp_path, server.url)
    # the first read of events hangs long enough to interrupt the sync in the middle
    server.inject("GET", "/api/tracker/events", fault="delay", seconds=2)
    started = len(server.requests)
    with subprocess.Popen(
        [EXE, "--config", "site.toml", "sync", "--once"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        deadline = time.monotonic() + 30
        while len(server.requests) == started and time.monotonic() < deadline:
            time.sleep(0.05)  # wait for the sync to talk to the server
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    server.clear_faults()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert "not synced to the end" in err and "next run" in err
    assert "dhis2-lmis:" not in out


def test_sigterm_ends_sync_forever_with_130(server: FakeDhis2, tmp_path: Path) -> None:
    write_config(tmp_path, server.url)
    with subprocess.Popen(
        [EXE, "--config", "site.toml", "sync", "--forever", "--programs", "receipt"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        for _ in range(3):  # the three demo receipts: the first run is under way or done
            process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "dhis2-lmis: interrupted: " in err
