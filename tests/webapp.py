"""The web view for the tests: a sample book in a ledger file, an app that mounts only the
pages (`ledger.web.pages`), and that app served by uvicorn on 127.0.0.1 at a free port in
a background thread, for the browser tests and `tests/screenshots.py`."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from helpers import Clock
from litestar import Litestar

from ledger.service import Ledger
from ledger.tools import samplebook
from ledger.vocabulary.terms import parse_policy
from ledger.web.app import create_app

UTC = datetime.UTC
HOSTILE = "<script>alert(1)</script>"
RECORDED = datetime.datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # when the sample book was recorded
LATE = datetime.datetime(2026, 2, 2, 10, 0, tzinfo=UTC)  # when the late news came in
AS_OF = datetime.date(2025, 12, 31)


@dataclass(frozen=True)
class SampleBook:
    """A ledger file of the sample book, with what the tests look for in it."""

    location: str
    early: str  # a known_at between the first recording and the late news
    late_buyer: str  # whose figures on AS_OF changed with the late news
    claim_buyer: str  # the buyer with a loss
    hostile_buyer: str  # registered with the name HOSTILE


def build_book(folder: Path, buyers: int = 24) -> SampleBook:
    """The seeded sample book recorded on RECORDED, a buyer named HOSTILE, and at LATE a
    back-dated payment (effective before AS_OF) that changes one buyer's figures."""
    location = str(folder / "ledger.db")
    table, rows = samplebook.generate(seed=7, buyers=buyers)
    clock = Clock(RECORDED)
    with Ledger(location, clock=clock) as ledger:
        ledger.load_policy(parse_policy(table))
        ledger.record(ledger.parse(list(enumerate(rows, 1)), "sample"))
        clock.advance(minutes=5)
        ledger.append({"type": "buyer_registered", "effective": "2025-03-01", "buyer": "X1", "name": HOSTILE,
                       "country": "GB"})
        insolvent = next(row["buyer"] for row in rows if row["type"] == "insolvency")
        book = ledger.exposure_model.book_on(AS_OF)
        paid_later = {row["buyer"] for row in rows
                      if row["type"] == "payment_received" and str(row["effective"]) >= "2025-12-20"}
        late_buyer = next(name for name, row in book
                          if row.outstanding > 100_000 and row.status == "active" and name not in paid_later)
        clock.set(LATE)
        ledger.append({"type": "payment_received", "effective": "2025-12-20", "buyer": late_buyer,
                       "amount": "1000.00", "key": "late-payment"})
    early = (RECORDED + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    return SampleBook(location, early, late_buyer, insolvent, "X1")


def build_app(location: str) -> Litestar:
    """The application `creditledger serve` runs (its API and pages, each request with a pooled
    Ledger of its own), on the ledger at `location`, without the background catch-up."""
    return create_app(location, catch_up_every=None)


@contextmanager
def served(location: str) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 at a port the system picks; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(location), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


# ---------------------------------------------------------------- the browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None: Debian's chromium and its driver
    (`make chromium` installs them); nothing is ever downloaded at run time."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    return f"no {' or '.join(missing)} (apt-get install chromium chromium-driver)" if missing else None


def chromium(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium driven by selenium through Debian's chromedriver (its path given,
    so selenium's driver manager never looks for, or downloads, one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1", "--lang=en-GB"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
