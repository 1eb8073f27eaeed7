"""The web view in a real browser: Debian's Chromium, headless, driven by selenium through
Debian's chromedriver (nothing downloaded). A credit manager's round: open the book, filter
it, move `as_of` and `known_at`, open a buyer and a claim; the figures on each page must equal
the CLI's (`--json`) for the same arguments. A buyer named `<script>alert(1)</script>` must
show as text and run nothing; on a phone's width the book must not overflow sideways."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from helpers import cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)
from webapp import AS_OF, HOSTILE, SampleBook, build_book, chromium, chromium_missing, served

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")

DAY = AS_OF.isoformat()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> SampleBook:
    return build_book(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def base(book: SampleBook) -> Iterator[str]:
    with served(book.location) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def printed(book: SampleBook, *args: str) -> Any:
    """What the CLI prints with --json for `args` on the sample book."""
    return msgspec.json.decode(cli(*args, "--db", book.location, "--json").stdout)


def wait_for(browser: Any, condition: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(condition)


def rows(browser: Any) -> dict[str, dict[str, str]]:
    """The book's rows as the browser shows them, in its order: by buyer, each figure's data-value
    and the status text. (A list from the script: the driver sorts an object's keys.)"""
    found = browser.execute_script("""
        const out = [];
        for (const row of document.querySelectorAll('#book tbody tr[data-buyer]')) {
            const cells = {};
            for (const cell of row.querySelectorAll('[data-field]')) {
                cells[cell.dataset.field] = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
            }
            cells.shown = row.querySelector('[data-field=outstanding]').textContent.trim();
            out.push([row.dataset.buyer, cells]);
        }
        return out;""")
    return {buyer: cells for buyer, cells in found}


def click_and_wait(browser: Any, element: Any) -> None:
    """Click a link or button and wait until the page it leads to has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    old = browser.find_element(By.TAG_NAME, "html")
    element.click()
    wait_for(browser, expected_conditions.staleness_of(old))


def set_field(browser: Any, field_id: str, value: str) -> None:
    """Fill a date or datetime-local picker (typing into one depends on the browser's locale)."""
    from selenium.webdriver.common.by import By

    browser.execute_script("arguments[0].value = arguments[1]", browser.find_element(By.ID, field_id), value)


def test_the_book_filtered_and_moved_in_time(browser: Any, base: str, book: SampleBook):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select

    browser.get(f"{base}/?as_of={DAY}")
    known_now = printed(book, "exposure", "--as-of", DAY)
    shown = rows(browser)
    assert {buyer: cells["outstanding"] for buyer, cells in shown.items()} == \
        {row["buyer"]: row["outstanding"] for row in known_now["buyers"]}
    assert browser.find_element(By.ID, "total-outstanding").get_attribute("data-value") == known_now["outstanding"]
    # a figure as read: thousands separated, the same amount
    row = max(known_now["buyers"], key=lambda r: Decimal(r["outstanding"]))
    assert shown[row["buyer"]]["shown"].replace(",", "") == row["outstanding"] and "," in shown[row["buyer"]]["shown"]

    # filter by status: choosing from the list applies at once (the page's script)
    before = browser.find_element(By.TAG_NAME, "html")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("overdue")
    wait_for(browser, expected_conditions.staleness_of(before))
    assert "status=overdue" in browser.current_url
    overdue = rows(browser)
    assert overdue and set(overdue) == {r["buyer"] for r in known_now["buyers"] if r["status"] == "overdue"}
    assert {cells["status"] for cells in overdue.values()} == {"overdue"}

    # then search by name, keeping the status filter
    some = sorted(overdue)[0]
    name = browser.find_element(By.CSS_SELECTOR, f'tr[data-buyer="{some}"] td.name').text
    search = browser.find_element(By.ID, "filter-q")
    search.send_keys(name)
    click_and_wait(browser, browser.find_element(By.ID, "filter-go"))
    wait_for(browser, lambda b: "q=" in b.current_url)
    assert list(rows(browser)) == [some]
    assert browser.find_element(By.ID, "count").text.startswith("1 of ")

    # clear the filters, then move known_at back before the late payment
    browser.get(f"{base}/?as_of={DAY}")
    set_field(browser, "known_at", book.early)
    click_and_wait(browser, browser.find_element(By.ID, "when-go"))
    wait_for(browser, lambda b: "known_at=" in b.current_url)
    known_then = printed(book, "exposure", "--as-of", DAY, "--known-at", book.early)
    then = rows(browser)
    assert {buyer: cells["outstanding"] for buyer, cells in then.items()} == \
        {r["buyer"]: r["outstanding"] for r in known_then["buyers"]}
    assert then[book.late_buyer]["outstanding"] != shown[book.late_buyer]["outstanding"]
    assert browser.find_element(By.ID, "known_at").get_attribute("value").startswith(book.early[:16])  # the picker drops ":00" seconds

    # and as_of, keeping known_at
    set_field(browser, "as_of", "2025-06-30")
    click_and_wait(browser, browser.find_element(By.ID, "when-go"))
    wait_for(browser, lambda b: "as_of=2025-06-30" in b.current_url)
    assert "known_at=" in browser.current_url
    mid_year = printed(book, "exposure", "--as-of", "2025-06-30", "--known-at", book.early)
    assert browser.find_element(By.ID, "total-outstanding").get_attribute("data-value") == mid_year["outstanding"]
    assert browser.find_element(By.ID, "shown-as-of").text == "2025-06-30"


def test_sorting_by_a_column_header(browser: Any, base: str):
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/?as_of={DAY}")
    click_and_wait(browser, browser.find_element(By.ID, "sort-outstanding"))
    wait_for(browser, lambda b: "sort=outstanding" in b.current_url)
    click_and_wait(browser, browser.find_element(By.ID, "sort-outstanding"))  # again: descending
    wait_for(browser, lambda b: "order=desc" in b.current_url)
    amounts = [Decimal(cells["outstanding"]) for cells in rows(browser).values()]
    assert amounts == sorted(amounts, reverse=True)


def test_a_buyer_from_the_book(browser: Any, base: str, book: SampleBook):
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/?as_of={DAY}")
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, book.late_buyer))
    wait_for(browser, lambda b: f"/buyers/{book.late_buyer}" in b.current_url)
    answer = printed(book, "exposure", "--as-of", DAY, "--buyer", book.late_buyer)
    for name in ("outstanding", "overdue", "insured", "uninsured", "limit", "headroom"):
        cell = browser.find_element(By.CSS_SELECTOR, f'#figures [data-field="{name}"]')
        assert cell.get_attribute("data-value") == answer[name]
        assert cell.text.replace(",", "") == answer[name]
    chart = browser.find_element(By.ID, "exposure-chart")
    assert chart.size["width"] > 300 and len(chart.find_elements(By.TAG_NAME, "polyline")) == 3
    assert browser.find_element(By.ID, "events").find_elements(By.CSS_SELECTOR, "tbody tr")


def test_a_claim_from_the_register_and_its_events(browser: Any, base: str, book: SampleBook):
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/claims?as_of={DAY}")
    register = printed(book, "claims", "--as-of", DAY)
    assert [r.get_attribute("data-buyer") for r in browser.find_elements(By.CSS_SELECTOR, "#claims tbody tr")] == \
        [claim["buyer"] for claim in register]
    click_and_wait(browser, browser.find_element(By.LINK_TEXT, book.claim_buyer))
    wait_for(browser, lambda b: f"/claims/{book.claim_buyer}" in b.current_url)
    claim = printed(book, "claim", book.claim_buyer, "--as-of", DAY, "--explain")
    for name in ("insured_loss", "indemnity", "retained", "insured_net_loss"):
        assert browser.find_element(By.CSS_SELECTOR, f'#claim-figures [data-field="{name}"]').get_attribute(
            "data-value") == claim[name]
    steps = browser.find_elements(By.CSS_SELECTOR, "#steps [data-step]")
    assert [(s.get_attribute("data-step"), s.get_attribute("data-value")) for s in steps] == \
        [(step["step"], step["after"]) for step in claim["steps"]]
    # a figure's events: unfold them, follow one to the buyer's list of events
    browser.find_element(By.CSS_SELECTOR, "#steps details summary").click()
    link = browser.find_element(By.CSS_SELECTOR, "#steps details a.event")
    event = link.get_attribute("title").removeprefix("event ")
    assert event in claim["steps"][0]["events"]
    link.click()  # the same page or another: the anchor is in the URL once it is followed
    wait_for(browser, lambda b: b.current_url.endswith(f"#event-{event}"))
    assert browser.find_element(By.ID, f"event-{event}").is_displayed()


def test_a_hostile_name_is_shown_as_text_and_runs_nothing(browser: Any, base: str, book: SampleBook):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    for url in (f"/?as_of={DAY}&q=X1", f"/buyers/{book.hostile_buyer}?as_of={DAY}"):
        browser.get(base + url)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
        assert HOSTILE not in browser.page_source.replace(HOSTILE.replace("<", "&lt;").replace(">", "&gt;"), "")
        assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(HOSTILE)


def test_the_book_on_a_phone(browser: Any, base: str):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.get(f"{base}/?as_of={DAY}")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        cell = browser.find_element(By.CSS_SELECTOR, "#book tbody tr [data-field=outstanding]")
        assert cell.is_displayed() and cell.location["x"] + cell.size["width"] <= 390
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
