"""Notebook comfort: the example notebook runs, progress bars, readable reprs and HTML reprs."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import dhis2_lmis.run.demo
from dhis2_lmis import (
    ConnectionCheck,
    Dhis2Config,
    Dhis2Lmis,
    Event,
    Requisition,
    RequisitionLine,
    StockReport,
    StockReportLine,
)
from dhis2_lmis.dhis2.records import DataValue, RecordProblem
from dhis2_lmis.lmis._progress import with_progress
from dhis2_lmis.lmis.models import Customer, Item
from dhis2_lmis.run.demo import demo_config, demo_customers, demo_items, demo_stores
from dhis2_lmis.testing import DEMO, FakeDhis2

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "explore_events.ipynb"
DEMO_WORLD_PAGE = Path(__file__).resolve().parents[1] / "docs" / "demo-world.md"
WRONG_PASSWORD = "Wr0ng-pass!word-4711"  # a test secret that must never show


def load_notebook() -> dict[str, Any]:
    with NOTEBOOK.open(encoding="utf-8") as f:
        notebook: dict[str, Any] = json.load(f)
    return notebook


def code_cells() -> list[str]:
    return ["".join(c["source"]) for c in load_notebook()["cells"] if c["cell_type"] == "code"]


@pytest.fixture
def fake() -> Iterator[FakeDhis2]:
    with FakeDhis2.demo() as server:
        yield server


@pytest.fixture
def lmis(fake: FakeDhis2) -> Iterator[Dhis2Lmis]:
    with Dhis2Lmis(
        demo_config(fake.url),
        items=demo_items(),
        stores=demo_stores(),
        customers=demo_customers(),
    ) as client:
        yield client


# -- the example notebook ----------------------------------------------------------------------


def test_notebook_is_nbformat_4_without_stored_outputs() -> None:
    notebook = load_notebook()
    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["source"], list)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == []
            assert cell["execution_count"] is None


@pytest.fixture(scope="module")
def notebook() -> dict[str, Any]:
    """The namespace after running the notebook's code cells in order, in this process."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - the notebook extra, as in the notebook

    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    try:
        for n, source in enumerate(code_cells()):
            exec(compile(source, f"{NOTEBOOK.name} code cell {n}", "exec"), namespace)
    finally:
        if isinstance(namespace.get("fake"), FakeDhis2):
            namespace["fake"].stop()
        plt.close("all")
    return namespace


def test_notebook_cells_run_in_order_and_build_the_frames(notebook: dict[str, Any]) -> None:
    namespace = notebook
    assert namespace["events"].shape == (20, 21)
    assert namespace["orders_wide"].shape == (8, 23)
    assert namespace["requisitions"].shape == (12, 16)
    assert namespace["ordered"].shape == (3, 5)
    assert namespace["stock"].shape == (9, 5)
    assert namespace["stock_pivot"].shape == (3, 3)
    assert namespace["fake"].errors == []


def test_notebook_pivot_sums_the_ordered_quantities(notebook: dict[str, Any]) -> None:
    ordered = notebook["ordered"]
    # The demo orders 100 + 20n and 50 + 5n of two items in each of six requisitions.
    assert ordered.to_numpy().sum() == sum(100 + 20 * n + 50 + 5 * n for n in range(6))
    assert ordered.loc["Riverside Health Centre", "AMOX250"] == 100


def test_notebook_chart_of_requisitioned_quantities_per_item_and_month(
    notebook: dict[str, Any],
) -> None:
    per_month, requisitions = notebook["per_month"], notebook["requisitions"]
    months = sorted(set(requisitions["completed_at"].dt.strftime("%Y-%m")))
    assert list(per_month.index) == months
    assert list(per_month.columns) == sorted(DEMO.item_codes)
    assert per_month.to_numpy().sum() == sum(100 + 20 * n + 50 + 5 * n for n in range(6))


def test_notebook_chart_of_stock_on_hand_over_time_at_one_facility(
    notebook: dict[str, Any],
) -> None:
    assert notebook["pushed"].ok
    stock = notebook["stock_over_time"]
    assert list(stock.columns) == ["AMOX250", "ORS200", "PARA500"]
    assert stock.index.is_monotonic_increasing
    # Riverside starts with 100 + 10i of the first three items (three STR events, a day apart);
    # consignment CN-2024-1001 then brings 100 AMOX250 and 40 ORS200 in one more event.
    assert stock["AMOX250"].tolist() == [100, 100, 100, 200]
    assert stock.iloc[-1].to_dict() == {"AMOX250": 200, "ORS200": 160, "PARA500": 110}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (raises on anything that is not a PNG)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_notebook_executes_headless_and_draws_two_real_charts(tmp_path: Path) -> None:
    from matplotlib.image import imread  # noqa: PLC0415 - the notebook extra

    # nbconvert runs the notebook in a real Jupyter kernel, as CI and a reader's Jupyter do.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=120",
            "--ExecutePreprocessor.kernel_name=python3",
            f"--output-dir={tmp_path}",
            str(NOTEBOOK),
        ],
        check=False,
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    executed = json.loads((tmp_path / NOTEBOOK.name).read_text(encoding="utf-8"))
    outputs = [
        (n, output)
        for n, cell in enumerate(executed["cells"])
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    ]
    assert [o for _, o in outputs if o["output_type"] == "error"] == []
    stderr = "".join("".join(o["text"]) for _, o in outputs if o.get("name") == "stderr")
    assert "Warning" not in stderr  # e.g. tqdm's "IProgress not found" without ipywidgets
    charts = [
        (n, base64.b64decode(o["data"]["image/png"]))
        for n, o in outputs
        if "image/png" in o.get("data", {})
    ]
    sources = ["".join(executed["cells"][n]["source"]) for n, _ in charts]
    assert len(charts) == 2
    assert "per_month.plot.bar" in sources[0]
    assert "stock_over_time.plot" in sources[1]
    for _, png in charts:
        width, height = png_size(png)
        assert width >= 300
        assert height >= 200
        pixels = imread(io.BytesIO(png), format="png")
        assert pixels.shape[:2] == (height, width)
        assert pixels.std() > 0.05  # something was drawn on the white canvas
    assert charts[0][1] != charts[1][1]
    widgets = [
        o for _, o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets  # the progress bars are ipywidgets in Jupyter


def flatten(value: object) -> list[object]:
    """The strings of a ``DEMO`` field, however deeply its tuples nest."""
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in flatten(item)]
    return [value]


def test_demo_world_page_names_every_uid_and_code_and_helper() -> None:
    page = DEMO_WORLD_PAGE.read_text(encoding="utf-8")
    patterned = set(flatten(DEMO.tracked_entities)) | set(flatten(DEMO.enrollments))
    for field in dataclasses.fields(DEMO):
        assert f"`{field.name}" in page or f"DEMO.{field.name}" in page, field.name
        value = getattr(DEMO, field.name)
        missing = [v for v in flatten(value) if v not in patterned and str(v) not in page]
        assert missing == [], field.name
    # the 30 tracked entity and enrollment UIDs are given by their pattern
    assert "`LmTe<f><i>xxxxx`" in page
    assert "`LmEn<f><i>yyyyy`" in page
    for helper in dhis2_lmis.run.demo.__all__:
        if helper not in ("DemoSummary", "PackingList"):
            assert f"`{helper}" in page, helper


# -- progress ----------------------------------------------------------------------------------


def test_progress_bar_counts_records_on_stderr(
    lmis: Dhis2Lmis, capsys: pytest.CaptureFixture[str]
) -> None:
    requisitions = list(lmis.fetch_completed_requisitions(progress=True))
    captured = capsys.readouterr()
    assert len(requisitions) == 6
    assert "requisitions: 6 records" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("fetch", "label"),
    [
        (lambda lmis: lmis.pull("order", progress=True), "order events: 8 records"),
        (lambda lmis: lmis.fetch_completed_receipts(progress=True), "receipts: 3 records"),
        (
            lambda lmis: lmis.fetch_stock_transactions(progress=True),
            "stock transactions: 9 records",
        ),
        (lambda lmis: lmis.fetch_stock_on_hand(progress=True), "stock levels: 9 records"),
    ],
)
def test_every_fetcher_takes_progress(
    lmis: Dhis2Lmis, capsys: pytest.CaptureFixture[str], fetch: Any, label: str
) -> None:
    for _ in fetch(lmis):
        pass
    assert label in capsys.readouterr().err


def test_stock_reports_take_progress(
    fake: FakeDhis2, lmis: Dhis2Lmis, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_data_value(DEMO.soh_data_elements[0], "202610", DEMO.facilities[0], 7)
    reports = list(lmis.fetch_stock_reports("202610", progress=True))
    assert len(reports) == 1
    assert "stock reports: 1 records" in capsys.readouterr().err


def test_no_progress_bar_unless_asked(lmis: Dhis2Lmis, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(list(lmis.fetch_completed_requisitions())) == 6
    assert capsys.readouterr().err == ""


def test_progress_without_tqdm_passes_records_through(
    lmis: Dhis2Lmis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    requisitions = list(lmis.fetch_completed_requisitions(progress=True))
    assert [r.event.uid for r in requisitions] == [
        r.event.uid for r in lmis.fetch_completed_requisitions()
    ]
    assert capsys.readouterr().err == ""


def test_progress_reads_nothing_ahead(capsys: pytest.CaptureFixture[str]) -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for n in range(5):
            pulled.append(n)
            yield n

    counted = with_progress(source(), desc="lazy", enabled=True)
    assert pulled == []
    assert next(counted) == 0
    assert pulled == [0]
    counted.close()  # type: ignore[attr-defined]  # with_progress returns a generator here
    assert "lazy: 1 records" in capsys.readouterr().err


# -- reprs -------------------------------------------------------------------------------------

WHEN = dt.datetime(2026, 11, 2, 9, 30, 15, 123000, tzinfo=dt.timezone(dt.timedelta(hours=3)))
AMOX = Item("AMOX250", "Amoxicillin 250mg capsules", universal_code="AMOX250")
RIVERSIDE = Customer("FAC001", "Riverside Health Centre", {"Dhis2Code": "LmFacility1"})


def event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "uid": "EvDemo00001",
        "org_unit": "LmFacility1",
        "status": "COMPLETED",
        "updated_at": WHEN,
        "data_values": (DataValue("AMOX250", "100"), DataValue("PARA500", "50")),
    }
    fields.update(changes)
    return Event(**fields)


def requisition(**changes: Any) -> Requisition:
    fields: dict[str, Any] = {
        "event": event(),
        "program": "LmOrderProg",
        "org_unit": "LmFacility1",
        "store": None,
        "customer": RIVERSIDE,
        "occurred_at": WHEN,
        "completed_at": WHEN,
        "updated_at": WHEN,
        "lines": (
            RequisitionLine("AMOX250", AMOX, Decimal("100"), "100"),
            RequisitionLine("COTRI480", None, Decimal("65"), "65"),
        ),
        "other_values": {},
        "problems": (RecordProblem("unknown_item", "no item has code COTRI480", "COTRI480"),),
        "source": "test",
    }
    fields.update(changes)
    return Requisition(**fields)


def test_event_repr_shows_uid_status_org_unit_update_and_value_count() -> None:
    assert repr(event()) == (
        "<Event EvDemo00001 COMPLETED org_unit=LmFacility1 "
        "updated_at=2026-11-02 09:30:15+03:00 values=2>"
    )


def test_event_repr_mentions_problems_and_deletion() -> None:
    text = repr(event(deleted=True, problems=(RecordProblem("malformed", "bad"),)))
    assert text.endswith("values=2 deleted problems=1>")


def test_requisition_repr_shows_facility_completion_lines_and_problems() -> None:
    assert repr(requisition()) == (
        "<Requisition EvDemo00001 Riverside Health Centre (FAC001) "
        "completed_at=2026-11-02 09:30:15+03:00 lines=2 problems=1>"
    )


def test_requisition_repr_falls_back_to_the_org_unit() -> None:
    assert "LmFacility1 completed_at=" in repr(requisition(customer=None))


def test_requisition_html_lists_lines_and_problems() -> None:
    html = requisition()._repr_html_()
    assert "<td>Amoxicillin 250mg capsules</td><td>100</td>" in html
    assert "<li>no item has code COTRI480</li>" in html


def test_stock_report_repr_and_html() -> None:
    report = StockReport(
        "LmFacility1",
        RIVERSIDE,
        None,
        "202610",
        None,
        (StockReportLine("SOH_AMOX250", "default", AMOX, Decimal("12.5"), "12.5"),),
    )
    assert repr(report) == (
        "<StockReport 202610 Riverside Health Centre (FAC001) lines=1 problems=0>"
    )
    assert "<td>12.5</td>" in report._repr_html_()


def test_fetched_records_have_short_reprs_and_html(lmis: Dhis2Lmis) -> None:
    records: list[Any] = [
        next(lmis.pull("order")),
        next(lmis.fetch_completed_requisitions()),
        next(lmis.fetch_completed_receipts()),
        next(lmis.fetch_stock_transactions()),
        next(lmis.fetch_stock_on_hand()),
        lmis.test_connection(),
    ]
    for record in records:
        text = repr(record)
        assert text.startswith(f"<{type(record).__name__} "), text
        assert "\n" not in text
        assert len(text) < 200, text
        assert record._repr_html_().startswith("<table>")


def test_repr_html_escapes_what_dhis2_sent() -> None:
    html = event(status="<script>", data_values=(DataValue("DE", "a & <b>"),))._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "a &amp; &lt;b&gt;" in html


def test_connection_check_repr_says_ok_and_version(lmis: Dhis2Lmis) -> None:
    check = lmis.test_connection()
    assert repr(check).startswith("<ConnectionCheck ok: Connection successful (DHIS2 2.41.0")
    assert "<td>2.41.0</td>" in check._repr_html_()


def test_connection_check_uses_the_injected_clock_and_reports_time_and_version(
    fake: FakeDhis2,
) -> None:
    when = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.timezone.utc)
    seen: list[tuple[dt.datetime, str]] = []
    config = demo_config(fake.url)
    with Dhis2Lmis(config, now=lambda: when, on_connection=lambda t, v: seen.append((t, v))) as c:
        check = c.test_connection()
    assert check.checked_at == when
    assert seen == [(when, "2.41.0")]


def test_connection_check_never_shows_the_password(fake: FakeDhis2) -> None:
    config = Dhis2Config.from_dict(
        {"dhis2": {"url": fake.url, "username": DEMO.username, "password": WRONG_PASSWORD}},
        environ={},
    )
    with Dhis2Lmis(config) as client:
        check = client.test_connection()
    assert isinstance(check, ConnectionCheck)
    assert not check.ok
    assert repr(check).startswith("<ConnectionCheck failed: Authentication failed")
    for text in (repr(check), str(check), check._repr_html_()):
        assert WRONG_PASSWORD not in text
