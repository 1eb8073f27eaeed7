"""`creditledger chart`: PNG files of plausible size whose pixels hold the plotted colours,
figures equal to the exposure query's, and the refusals (one line, exit 1, no file)."""

from __future__ import annotations

import datetime
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.adapters import charts
from ledger.cli import main
from ledger.queries.exposure import exposure_query, known_terms
from ledger.service import Ledger
from ledger.vocabulary.errors import LedgerError
from ledger.vocabulary.money import format_minor
from projections.cover import buyer_cover
from projections.exposure import Exposure, book_totals

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVENTS = [
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B1", "name": "Acme Ltd", "country": "GB"},
    {"type": "buyer_registered", "effective": "2025-01-02", "buyer": "B2", "name": "Bolt GmbH", "country": "DE"},
    {"type": "limit_granted", "effective": "2025-01-03", "buyer": "B1", "amount": "20000", "basis": "underwriter"},
    {"type": "limit_granted", "effective": "2025-01-05", "buyer": "B2", "amount": "5000", "basis": "underwriter"},
    {"type": "invoice_issued", "effective": "2025-01-10", "buyer": "B1", "invoice": "I1", "amount": "8000.00",
     "due": "2025-03-10"},
    {"type": "invoice_issued", "effective": "2025-01-20", "buyer": "B2", "invoice": "J1", "amount": "3000.00",
     "due": "2025-03-20"},
    {"type": "invoice_issued", "effective": "2025-02-01", "buyer": "B1", "invoice": "I2", "amount": "15000.00",
     "due": "2025-04-01"},
    {"type": "payment_received", "effective": "2025-02-15", "buyer": "B1", "amount": "5000.00", "invoice": "I1"},
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ledger file with the SPEC 4 policy, two buyers, three invoices and a payment (built once)."""
    folder = tmp_path_factory.mktemp("charts")
    path, events = str(folder / "ledger.db"), folder / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    cli("init", "--db", path)
    cli("policy", "load", str(POLICY_FILE), "--db", path)
    cli("import", str(events), "--db", path)
    return path


def hex_colour(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def pixels(path: Path) -> dict[tuple[int, int, int], int]:
    """How many pixels of each RGB colour the PNG holds (read back with matplotlib)."""
    import matplotlib.image
    import numpy

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400, image.shape
    rgb = numpy.rint(image[:, :, :3] * 255).astype(int).reshape(-1, 3)
    colours, counts = numpy.unique(rgb, axis=0, return_counts=True)
    return {(int(r), int(g), int(b)): int(n) for (r, g, b), n in zip(colours, counts, strict=True)}


def check_png(path: Path, *colours: str) -> dict[tuple[int, int, int], int]:
    """A real PNG of plausible size, not blank, with each plotted colour on a solid run of pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert 10_000 < len(data) < 1_000_000, len(data)
    found = pixels(path)
    assert len(found) > 50, "a blank or near-blank picture"
    white = found.get((255, 255, 255), 0)
    assert white < 0.97 * sum(found.values()), "almost everything is background"
    for colour in colours:
        assert found.get(hex_colour(colour), 0) > 100, f"{colour} is not plotted"
    return found


# ---------------------------------------------------------------- the pictures

def test_exposure_chart_of_one_buyer(db: str, tmp_path: Path):
    out = tmp_path / "b1.png"
    result = cli("chart", "exposure", "--buyer", "B1", "--from", "2025-01-01", "--to", "2025-03-31",
                 "--out", str(out), "--db", db)
    assert "90 daily samples from 2025-01-01 to 2025-03-31" in result.stdout
    check_png(out, charts.OUTSTANDING_COLOUR, charts.INSURED_COLOUR, charts.LIMIT_COLOUR)


def test_exposure_chart_of_the_book_weekly(db: str, tmp_path: Path):
    out = tmp_path / "book-exposure.png"
    result = cli("chart", "exposure", "--from", "2025-01-01", "--to", "2025-06-30", "--out", str(out), "--db", db)
    assert "27 weekly samples" in result.stdout  # 181 days: weekly, and the last day too
    check_png(out, charts.OUTSTANDING_COLOUR, charts.INSURED_COLOUR, charts.LIMIT_COLOUR)


def test_book_chart(db: str, tmp_path: Path):
    out = tmp_path / "book.png"
    result = cli("chart", "book", "--as-of", "2025-02-28", "--out", str(out), "--db", db)
    assert "2 buyers as of 2025-02-28" in result.stdout
    check_png(out, charts.OUTSTANDING_COLOUR, charts.INSURED_COLOUR, charts.LIMIT_COLOUR)


def test_book_chart_with_nothing_outstanding_says_so(db: str, tmp_path: Path):
    out = tmp_path / "empty.png"
    result = cli("chart", "book", "--as-of", "2025-01-05", "--out", str(out), "--db", db)
    assert "0 buyers" in result.stdout
    found = pixels(out)
    assert hex_colour(charts.OUTSTANDING_COLOUR) not in found
    assert len(found) > 2  # the title and the note are drawn


def test_a_chart_replaces_the_file_whole(db: str, tmp_path: Path):
    out = tmp_path / "again.png"
    out.write_bytes(b"old")
    cli("chart", "book", "--as-of", "2025-02-28", "--out", str(out), "--db", db)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["again.png"]  # no temporary file left


# ---------------------------------------------------------------- the figures behind them

@pytest.mark.parametrize("buyer", ["B1", "B2", None])
def test_series_equals_the_exposure_query(db: str, buyer: str | None):
    days = [datetime.date(2025, 1, 1), datetime.date(2025, 1, 10), datetime.date(2025, 2, 1),
            datetime.date(2025, 2, 15), datetime.date(2025, 3, 31)]
    with Ledger(db) as ledger:
        points = charts.exposure_series(ledger, buyer, days, None)
        for point in points:
            if buyer and point.day < datetime.date(2025, 1, 2):
                assert (point.outstanding, point.insured, point.limit) == (0, 0, 0)  # not registered yet
                continue
            answer = exposure_query(ledger, {"buyer": buyer, "as_of": point.day})
            shown = {name: format_minor(getattr(point, name), "GBP")
                     for name in ("outstanding", "insured", "limit", "top_up")}
            assert shown == {name: getattr(answer, name) for name in shown}
    assert [p.outstanding for p in points][-1] > 0


def folded(ledger: Ledger, buyer: str | None, days: list[datetime.date],
           known_at: datetime.datetime | None) -> list[tuple[int, int, int, int, int]]:
    """The figures by the pure fold of every stream, with no read model: what the series must equal."""
    streams = [buyer] if buyer else ledger.store.index.buyers()
    result = []
    for day in days:
        covers = [buyer_cover(name, ledger.buyer_events(name), ledger.policy_events(), day, known_at)
                  for name in streams]
        terms = known_terms(ledger.policy_events(), known_at)
        totals = book_totals(Exposure.of(cover, terms) for cover in covers if cover.registered is not None)
        result.append((totals["outstanding"], totals["insured"], totals["limit"], totals["top_up"], totals["available"]))
    return result


@pytest.mark.parametrize("buyer", ["B1", None])
def test_series_known_now_and_earlier_equal_a_fresh_fold(db: str, tmp_path: Path, buyer: str | None):
    """The read model answers known now; known before a late, back-dated payment, the buyers
    with that news are folded again: both equal the fold of the events known then."""
    path = tmp_path / "late.db"
    with sqlite3.connect(db) as source, sqlite3.connect(path) as copy:
        source.backup(copy)
    before = json.loads(cli("log", "--json", "--db", str(path)).stdout)[-1]["recorded"]
    late = tmp_path / "late.jsonl"
    late.write_text(json.dumps({"type": "payment_received", "effective": "2025-01-20", "buyer": "B1",
                                "amount": "2000.00", "invoice": "I1"}) + "\n")
    cli("import", str(late), "--db", str(path))
    known_before = datetime.datetime.fromisoformat(before)
    days = charts.sample_days(datetime.date(2025, 1, 1), datetime.date(2025, 3, 31), "week")
    with Ledger(str(path)) as ledger:
        now = charts.exposure_series(ledger, buyer, days, None)
        earlier = charts.exposure_series(ledger, buyer, days, known_before)
        for points, moment in ((now, None), (earlier, known_before)):
            assert [(p.outstanding, p.insured, p.limit, p.top_up, p.available) for p in points] == \
                folded(ledger, buyer, days, moment)
    changed = [p.day for p, q in zip(now, earlier, strict=True) if p.outstanding != q.outstanding]
    assert changed and changed[0] >= datetime.date(2025, 1, 20)  # the late payment reaches back, not further


def test_one_buyer_known_earlier(db: str):
    with Ledger(db) as ledger:
        early = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # before anything was recorded
        with pytest.raises(LedgerError, match="B1 is not a registered buyer by 2025-03-31 as known at 2000"):
            charts.exposure_series(ledger, "B1", [datetime.date(2025, 3, 31)], early)


def test_largest_exposures_in_order_and_cut_at_top(db: str):
    with Ledger(db) as ledger:
        rows = charts.largest_exposures(ledger, datetime.date(2025, 2, 28), None, 10)
        assert [(name, row.outstanding) for name, row in rows] == [("B1", 1_800_000), ("B2", 300_000)]
        assert [name for name, _ in charts.largest_exposures(ledger, datetime.date(2025, 2, 28), None, 1)] == ["B1"]


def test_sample_days():
    first = datetime.date(2025, 1, 1)
    assert charts.sample_days(first, first) == [first]
    daily = charts.sample_days(first, datetime.date(2025, 4, 3))  # 92 days: still daily
    assert len(daily) == 93 and daily[-1] == datetime.date(2025, 4, 3)
    weekly = charts.sample_days(first, datetime.date(2025, 4, 4))
    assert weekly[1] - weekly[0] == datetime.timedelta(days=7) and weekly[-1] == datetime.date(2025, 4, 4)
    assert len(charts.sample_days(first, datetime.date(2025, 1, 31), "week")) == 6  # 1, 8, 15, 22, 29, 31
    assert len(charts.sample_days(first, datetime.date(2025, 12, 31), "day")) == 365


# ---------------------------------------------------------------- refusals

def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The real entry point in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["creditledger", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), capsys.readouterr().err


REFUSALS = [
    pytest.param(["exposure", "--buyer", "B9", "--from", "2025-01-01", "--to", "2025-02-01"],
                 "buyer: B9 is not a registered buyer", id="unknown-buyer"),
    pytest.param(["exposure", "--from", "2025-03-01", "--to", "2025-02-01"],
                 "from: --from 2025-03-01 is after --to 2025-02-01", id="from-after-to"),
    pytest.param(["exposure", "--from", "2025-02-30", "--to", "2025-03-01"],
                 "from: '2025-02-30' is not a date", id="impossible-date"),
    pytest.param(["exposure", "--from", "2000-01-01", "--to", "2025-01-01", "--every", "day"],
                 "to: 9133 samples", id="too-many-samples"),
    pytest.param(["exposure", "--from", "2025-01-01", "--to", "2025-02-01", "--every", "month"],
                 "every: 'month' is not a step", id="unknown-step"),
    pytest.param(["book", "--as-of", "2025-02-28", "--top", "0"], "top: 0 is not between 1 and 50", id="top-zero"),
    pytest.param(["book", "--as-of", "2025-02-28", "--known-at", "soon"], "known_at: 'soon' is not a timestamp",
                 id="bad-known-at"),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_refusals(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  args: list[str], message: str):
    out = tmp_path / "chart.png"
    code, err = run_main(monkeypatch, capsys, "chart", *args, "--out", str(out), "--db", db)
    assert code == 1
    assert err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("where", "message"), [
    pytest.param("missing/chart.png", "missing is not a folder", id="no-folder"),
    pytest.param("chart.txt", "the file name must end in .png", id="not-png"),
    pytest.param("folder.png", "is a folder, not a file", id="a-folder"),
])
def test_unwritable_paths(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str], where: str, message: str):
    (tmp_path / "folder.png").mkdir()
    target = tmp_path / where
    for command in (["exposure", "--from", "2025-01-01", "--to", "2025-01-31"], ["book", "--as-of", "2025-02-28"]):
        code, err = run_main(monkeypatch, capsys, "chart", *command, "--out", str(target), "--db", db)
        assert code == 1
        assert err.startswith(f"error: {target}: out: ") and err.endswith(f"{message}\n"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]


def test_a_write_that_fails_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(charts.os, "replace", refuse)
    with pytest.raises(LedgerError, match="out: cannot be written: No space left on device"):
        charts.write_png(tmp_path / "chart.png", PNG_SIGNATURE)
    assert list(tmp_path.iterdir()) == []


def test_no_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    code, err = run_main(monkeypatch, capsys, "chart", "book", "--out", str(tmp_path / "c.png"),
                         "--db", str(tmp_path / "none.db"))
    assert code == 1 and "there is no ledger at" in err
