"""The web view over plain HTTP (Litestar's test client): every page answers 200 with the
figures of the queries for the same `as_of` and `known_at`, filters and sorting keep to
what they say, what a user recorded is escaped, bad arguments are refused with the CLI's
words, and the footer's verify runs once per log position."""

from __future__ import annotations

import datetime
import html
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient
from webapp import AS_OF, HOSTILE, LATE, SampleBook, build_app, build_book

from ledger.adapters.charts import exposure_series, sample_days
from ledger.operations.verify import verify
from ledger.queries import answers
from ledger.queries.registry import run_query
from ledger.service import Ledger
from ledger.web import viewing
from ledger.web.viewing import grouped

DAY = AS_OF.isoformat()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> SampleBook:
    return build_book(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(book: SampleBook) -> Iterator[TestClient[Any]]:
    with TestClient(build_app(book.location)) as opened:
        yield opened


@pytest.fixture(scope="module")
def ledger(book: SampleBook) -> Iterator[Ledger]:
    """The same ledger file, opened here to ask the queries."""
    with Ledger(book.location) as opened:
        yield opened


class Cells(HTMLParser):
    """The figures a page marks up: each `data-field` with its `data-value` (or its text), by
    the `data-buyer` of the row it is in ("" outside one), and the text of every element by id."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.order: list[str] = []
        self.by_id: dict[str, str] = {}
        self._row = ""
        self._open: list[tuple[str, str | None, str | None]] = []  # (tag, field, id)
        self._text: dict[int, list[str]] = {}
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "tr" and named.get("data-buyer") is not None:
            self._row = named["data-buyer"] or ""
            self.order.append(self._row)
        field = named.get("data-field")
        if field is not None and named.get("data-value") is not None:
            self.rows.setdefault(self._row, {})[field] = named["data-value"] or ""
            field = None
        if tag in ("input", "br", "meta", "link", "col"):
            return
        self._open.append((tag, field, named.get("id")))
        self._text[len(self._open)] = []

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        depth = len(self._open)
        _, field, ident = self._open.pop()
        text = "".join(self._text.pop(depth, [])).strip()
        if self._open:
            self._text[depth - 1].append(text)
        if field is not None:
            self.rows.setdefault(self._row, {})[field] = text
        if ident is not None:
            self.by_id[ident] = text
        if tag == "tr":
            self._row = ""

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text[len(self._open)].append(data)


def page(client: TestClient[Any], url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def figures_of(answer: msgspec.Struct, fields: list[str]) -> dict[str, str]:
    return {name: getattr(answer, name) for name in fields}


FIGURES = ["outstanding", "overdue", "insured", "limit", "headroom", "available"]


# ---------------------------------------------------------------- the book

def test_book_equals_the_exposure_query(client: TestClient[Any], ledger: Ledger):
    cells = Cells(page(client, f"/?as_of={DAY}"))
    answer = run_query("exposure", ledger, {"as_of": DAY})
    assert isinstance(answer, answers.BookExposure)
    assert {row.buyer: figures_of(row, FIGURES) for row in answer.buyers} == \
        {buyer: {name: cells.rows[buyer][name] for name in FIGURES} for buyer in cells.order}
    assert cells.order == sorted(row.buyer for row in answer.buyers)
    for name in ("outstanding", "overdue", "insured", "uninsured", "limit", "headroom", "available"):
        assert cells.rows[""][name] == getattr(answer, name)
        assert cells.by_id[f"total-{name}"] == grouped(getattr(answer, name))


def test_book_equals_the_clis_json(client: TestClient[Any], book: SampleBook):
    printed = msgspec.json.decode(cli("exposure", "--db", book.location, "--as-of", DAY, "--json").stdout)
    cells = Cells(page(client, f"/?as_of={DAY}"))
    assert cells.rows[""]["outstanding"] == printed["outstanding"]
    for row in printed["buyers"]:
        assert cells.rows[row["buyer"]]["insured"] == row["insured"]


def test_book_known_earlier_equals_the_query_known_then(client: TestClient[Any], ledger: Ledger, book: SampleBook):
    now = Cells(page(client, f"/?as_of={DAY}"))
    then = Cells(page(client, f"/?as_of={DAY}&known_at={book.early}"))
    earlier = run_query("exposure", ledger, {"as_of": DAY, "known_at": book.early})
    assert isinstance(earlier, answers.BookExposure)
    assert {row.buyer: row.outstanding for row in earlier.buyers} == \
        {buyer: then.rows[buyer]["outstanding"] for buyer in then.order}
    # the late payment (1000.00, recorded after `early`) is in the figures now, not then
    assert Decimal(then.rows[book.late_buyer]["outstanding"]) - Decimal(now.rows[book.late_buyer]["outstanding"]) \
        == Decimal("1000.00")


def test_book_on_another_date(client: TestClient[Any], ledger: Ledger):
    cells = Cells(page(client, "/?as_of=2025-06-30"))
    answer = run_query("exposure", ledger, {"as_of": "2025-06-30"})
    assert isinstance(answer, answers.BookExposure)
    assert cells.rows[""]["outstanding"] == answer.outstanding
    assert cells.by_id["shown-as-of"] == "2025-06-30"


def test_filters(client: TestClient[Any], ledger: Ledger):
    answer = run_query("exposure", ledger, {"as_of": DAY})
    assert isinstance(answer, answers.BookExposure)
    overdue = [row.buyer for row in answer.buyers if row.status == "overdue"]
    assert overdue
    assert Cells(page(client, f"/?as_of={DAY}&status=overdue")).order == overdue
    german = Cells(page(client, f"/?as_of={DAY}&country=DE"))
    directory = viewing.buyer_directory(ledger, None)
    assert german.order == [row.buyer for row in answer.buyers if directory[row.buyer].country == "DE"]
    name = directory[overdue[0]].name
    found = Cells(page(client, f"/?as_of={DAY}&q={name.split()[0].lower()}")).order
    assert overdue[0] in found and all(name.split()[0].lower() in directory[b].name.lower() for b in found)
    assert Cells(page(client, f"/?as_of={DAY}&q={overdue[0].lower()}")).order == [overdue[0]]
    assert Cells(page(client, f"/?as_of={DAY}&q=no+such+buyer")).order == []


def test_sorting(client: TestClient[Any], ledger: Ledger):
    cells = Cells(page(client, f"/?as_of={DAY}&sort=outstanding&order=desc"))
    amounts = [Decimal(cells.rows[buyer]["outstanding"]) for buyer in cells.order]
    assert amounts == sorted(amounts, reverse=True) and len(set(amounts)) > 3
    names = Cells(page(client, f"/?as_of={DAY}&sort=name"))
    directory = viewing.buyer_directory(ledger, None)
    assert [directory[b].name.casefold() for b in names.order] == sorted(directory[b].name.casefold() for b in names.order)
    assert Cells(page(client, f"/?as_of={DAY}&sort=nonsense")).order == sorted(cells.order)


def test_links_keep_the_time(client: TestClient[Any], book: SampleBook):
    text = page(client, f"/?as_of={DAY}&known_at={book.early}")
    links = re.findall(r'href="(/[^"]*)"', text)
    assert f"/buyers/{book.late_buyer}?as_of={DAY}&amp;known_at={book.early.replace(':', '%3A')}" in links
    known_now = f"/?as_of={DAY}"  # the one link that drops known_at, on purpose
    assert known_now in links
    assert all("known_at=" in link for link in links if not link.startswith("/static") and link != known_now)


# ---------------------------------------------------------------- a buyer

def test_buyer_page(client: TestClient[Any], ledger: Ledger, book: SampleBook):
    buyer = book.late_buyer
    text = page(client, f"/buyers/{buyer}?as_of={DAY}")
    cells = Cells(text)
    answer = run_query("exposure", ledger, {"as_of": DAY, "buyer": buyer})
    assert figures_of(answer, [*FIGURES, "uninsured", "top_up"]).items() <= cells.rows[""].items()
    # the chart draws the exposure query's figures: its caption names the last day's
    points = exposure_series(ledger, buyer, sample_days(datetime.date(2025, 1, 1), AS_OF), None)
    assert points[-1].outstanding == round(Decimal(answer.outstanding) * 100)  # type: ignore[attr-defined]
    assert f"on {DAY} outstanding {answer.outstanding}, insured {answer.insured}" in html.unescape(text)  # type: ignore[attr-defined]
    assert text.count("<polyline") == 3
    # every event of the buyer is listed, with both time axes
    events = ledger.log(buyer=buyer)
    for event in events:
        assert f'id="event-{event.id}"' in text
    assert "late-payment" in text and LATE.strftime("%Y-%m-%dT%H:%M:%S") in text
    assert 'id="limits"' in text and "limit granted" in text


def test_buyer_page_known_earlier_has_no_late_event(client: TestClient[Any], ledger: Ledger, book: SampleBook):
    text = page(client, f"/buyers/{book.late_buyer}?as_of={DAY}&known_at={book.early}")
    assert "late-payment" not in text
    answer = run_query("exposure", ledger, {"as_of": DAY, "buyer": book.late_buyer, "known_at": book.early})
    assert Cells(text).rows[""]["outstanding"] == answer.outstanding  # type: ignore[attr-defined]


def test_invoices_say_why_not_insured(client: TestClient[Any], ledger: Ledger, book: SampleBook):
    claim = run_query("claim", ledger, {"as_of": DAY, "buyer": book.claim_buyer, "explain": True})
    assert isinstance(claim, answers.ClaimExplained)
    text = html.unescape(page(client, f"/buyers/{book.claim_buyer}?as_of={DAY}"))
    zero_caps = [line for line in claim.invoices if line.cap == "0.00"]
    assert zero_caps and "capped at entry" in text
    assert 'id="claim-link"' in text
    for line in claim.invoices:
        assert f'data-invoice="{line.invoice}"' in text


# ---------------------------------------------------------------- claims

def test_claims_register(client: TestClient[Any], ledger: Ledger):
    register = run_query("claims", ledger, {"as_of": DAY})
    assert isinstance(register, answers.ClaimsRegister) and register.claims
    cells = Cells(page(client, f"/claims?as_of={DAY}"))
    assert cells.order == [c.buyer for c in register.claims]
    for claim in register.claims:
        assert cells.rows[claim.buyer] == figures_of(
            claim, ["insured_loss", "indemnity", "indemnity_paid", "recovered", "insured_net_loss"])


def test_claim_page_is_the_explanation_linked_to_its_events(client: TestClient[Any], ledger: Ledger,
                                                           book: SampleBook):
    claim = run_query("claim", ledger, {"as_of": DAY, "buyer": book.claim_buyer, "explain": True})
    assert isinstance(claim, answers.ClaimExplained)
    text = page(client, f"/claims/{book.claim_buyer}?as_of={DAY}")
    cells = Cells(text)
    for name in ("insured_loss", "indemnity", "retained", "insured_net_loss"):
        assert cells.rows[""][name] == getattr(claim, name)
    for step in claim.steps:
        assert f'data-step="{step.step}" data-value="{step.after}"' in text
        for event in step.events:
            assert f'/buyers/{book.claim_buyer}?as_of={DAY}#event-{event}"' in text
    assert claim.loss_event and f"#event-{claim.loss_event}" in text


def test_unknown_buyer_and_bad_dates_are_refused_in_the_clis_words(client: TestClient[Any]):
    text = page(client, "/buyers/NOBODY?as_of=2025-12-31", status=404)
    assert "buyer: NOBODY is not a registered buyer on 2025-12-31" in text
    text = page(client, "/?as_of=31/12/2025", status=400)
    assert "as_of: '31/12/2025' is not a date (write 2025-03-31)" in html.unescape(text)
    text = page(client, "/claims?known_at=yesterday", status=400)
    assert "known_at: " in text and "is not a timestamp" in text
    assert "period: " in page(client, "/turnover?period=2025-Q5", status=400)


# ---------------------------------------------------------------- obligations, premium, turnover, diff

def test_obligations_missed_first(client: TestClient[Any], ledger: Ledger):
    answer = run_query("obligations", ledger, {"as_of": DAY})
    assert isinstance(answer, answers.Obligations)
    text = page(client, f"/obligations?as_of={DAY}")
    statuses = re.findall(r'status-duty-(\w+)">', text)
    assert sorted(statuses) == sorted(duty.status for duty in answer.obligations)
    rank = {"missed": 0, "pending": 1, "met": 2}
    assert statuses == sorted(statuses, key=rank.__getitem__) and "missed" in statuses


def test_premium_account(client: TestClient[Any], ledger: Ledger):
    account = run_query("premium", ledger, {"as_of": DAY, "lines": True})
    assert isinstance(account, answers.Premium) and isinstance(account.lines, tuple)
    text = page(client, f"/premium?as_of={DAY}")
    cells = Cells(text)
    for name in ("premium", "adjustment", "investigation_fees", "monitoring_fees", "top_up", "tax", "total"):
        assert cells.rows[""][name] == getattr(account, name)
    assert text.count('<td class="day">') == len(account.lines)
    assert {f'data-kind="{line.kind}"' for line in account.lines} <= set(re.findall(r'data-kind="\w+"', text))


def test_turnover_by_period_and_country(client: TestClient[Any], ledger: Ledger):
    text = page(client, f"/turnover?as_of={DAY}&period=2025-Q3")
    for quarter in ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"):
        answer = run_query("turnover", ledger, {"period": quarter})
        assert isinstance(answer, answers.Turnover)
        assert f'data-value="{answer.insurable}"' in text
    cells = Cells(text)
    declaration = run_query("declaration", ledger, {"period": "2025-Q3"})
    assert isinstance(declaration, answers.Declaration)
    for row in declaration.countries:
        country = run_query("turnover", ledger, {"period": "2025-Q3", "country": row.country})
        assert f'<tr data-country="{row.country}"><td>{row.country}</td><td class="num" data-field="insurable" ' \
               f'data-value="{country.insurable}">' in text  # type: ignore[attr-defined]
    assert cells.by_id  # the page parsed


def test_diff_of_two_known_at(client: TestClient[Any], ledger: Ledger, book: SampleBook):
    late = LATE.strftime("%Y-%m-%dT%H:%M:%S")
    diff = run_query("exposure_diff", ledger, {"as_of": DAY, "known_at": [book.early, late]})
    assert isinstance(diff, answers.ExposureDiff) and [c.buyer for c in diff.changes] == [book.late_buyer]
    text = page(client, f"/diff?as_of={DAY}&from={book.early}&to={late}")
    change = diff.changes[0]
    for name, values in change.changed.items():
        assert values.before and values.after
        assert grouped(values.before) in text and grouped(values.after) in text, name
    assert "1 late event behind the change" in text and "payment received" in text
    assert "buyer changed" not in page(client, f"/diff?as_of={DAY}")  # no moments yet: the form alone


# ---------------------------------------------------------------- escaping, footer, static files

def test_a_hostile_name_is_escaped_everywhere(client: TestClient[Any], book: SampleBook):
    for url in (f"/?as_of={DAY}", f"/buyers/{book.hostile_buyer}?as_of={DAY}", f"/?as_of={DAY}&q=%3Cscript",
                f"/obligations?as_of={DAY}"):
        text = page(client, url)
        assert HOSTILE not in text
        if "X1" in text:
            assert html.escape(HOSTILE) in text
    text = page(client, f"/?as_of={DAY}&q={HOSTILE}")
    assert HOSTILE not in text and f'value="{html.escape(HOSTILE)}"' in text
    assert Cells(text).order == [book.hostile_buyer]


def test_footer_shows_verify_and_the_head_and_verifies_once_per_log_position(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    small = build_book(tmp_path, buyers=3)
    runs = []
    monkeypatch.setattr(viewing, "verify", lambda opened: runs.append(1) or verify(opened))
    with Ledger(small.location) as ledger, TestClient(build_app(small.location)) as client:
        report = verify(ledger)
        for _ in range(3):
            cells = Cells(page(client, f"/claims?as_of={DAY}"))
        assert len(runs) == 1
        assert cells.by_id["verify-status"] == "Verified: chain and read models intact"
        assert cells.by_id["chain-head"] == f"{report.head_id} {report.head_hash[:16]}…"
        ledger.append({"type": "buyer_registered", "effective": "2025-04-01", "buyer": "F1", "name": "Footer Ltd",
                       "country": "FR"})
        cells = Cells(page(client, f"/claims?as_of={DAY}"))
        assert len(runs) == 2 and cells.by_id["chain-head"].startswith(f"{report.head_id + 1} ")
        text = page(client, "/verify")
        assert len(runs) == 3 and verify(ledger).head_hash in text


def test_a_large_ledger_links_verify_instead_of_running_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    small = build_book(tmp_path, buyers=3)
    monkeypatch.setattr(viewing, "VERIFY_ON_PAGE_EVENTS", 10)
    monkeypatch.setattr(viewing, "VERIFY_BEHIND_EVENTS", 10)
    with TestClient(build_app(small.location)) as client:
        cells = Cells(page(client, f"/claims?as_of={DAY}"))
        assert cells.by_id["verify-status"].startswith("Not verified yet")
        page(client, "/verify")
        assert Cells(page(client, f"/claims?as_of={DAY}")).by_id["verify-status"].startswith("Verified")


def test_a_middling_ledger_is_verified_behind_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    small = build_book(tmp_path, buyers=3)
    monkeypatch.setattr(viewing, "VERIFY_ON_PAGE_EVENTS", 10)
    with TestClient(build_app(small.location)) as client:
        first = Cells(page(client, f"/claims?as_of={DAY}")).by_id["verify-status"]
        assert first.startswith("Verifying")
        deadline = time.monotonic() + 60
        while (status := Cells(page(client, f"/claims?as_of={DAY}")).by_id["verify-status"]).startswith("Verifying"):
            assert time.monotonic() < deadline, "the verify behind the page never finished"
            time.sleep(0.1)
        assert status == "Verified: chain and read models intact"
        with Ledger(small.location) as ledger:
            report = verify(ledger)
        assert Cells(page(client, "/obligations")).by_id["chain-head"] == f"{report.head_id} {report.head_hash[:16]}…"


def test_static_files(client: TestClient[Any]):
    assert "font-variant-numeric: tabular-nums" in client.get("/static/web.css").text
    assert client.get("/static/web.js").status_code == 200
    assert client.get("/static/../pages.py").status_code == 404


# ---------------------------------------------------------------- money as people read it

@given(st.decimals(min_value=-10**15, max_value=10**15, places=2, allow_nan=False, allow_infinity=False))
def test_grouping_only_adds_separators(amount: Decimal):
    text = f"{amount:f}"
    shown = grouped(text)
    assert shown.replace(",", "") == text
    whole = shown.lstrip("-").split(".")[0]
    assert all(len(group) == 3 for group in whole.split(",")[1:]) and 1 <= len(whole.split(",")[0]) <= 3


def test_grouping_examples():
    assert grouped("1234567.50") == "1,234,567.50"
    assert grouped("-1000.00") == "-1,000.00"
    assert grouped("999.99") == "999.99"
    assert grouped("") == ""


def test_the_templates_escape_by_default():
    from ledger.web.pages import _environment

    assert _environment().from_string("{{ name }}").render(name=HOSTILE) == html.escape(HOSTILE)


def test_available_cover_is_shown_with_its_reason(ledger: Ledger, client: TestClient):
    """The book shows each buyer's `available` as the exposure query answers it, with the reason
    when it is 0 whatever the headroom, and sorts by it."""
    from ledger.web.pages import BookRow, _sort_key

    answer = run_query("exposure", ledger, {"as_of": DAY})
    assert isinstance(answer, answers.BookExposure)
    rows = [BookRow.of(row) for row in answer.buyers]
    assert [row.available for row in rows] == [row.available for row in answer.buyers]
    top = sorted(rows, key=lambda row: _sort_key(row, "available"), reverse=True)[0]
    assert Decimal(top.available) == max(Decimal(row.available) for row in answer.buyers)
    page = client.get("/", params={"as_of": DAY}).text
    for row in answer.buyers:
        if row.not_available:
            assert row.not_available.replace("_", " ") in page
