"""`make screenshots`: the main pages of the web view as PNG files under build/screenshots/,
at laptop width and (the book and a buyer) at phone width.

Builds the sample book of the tests (tests/webapp.py: the seeded sample book, news recorded
late, a buyer with a hostile name), so that every page, the changes page too, has something to show. Serves the pages with tests/webapp.py and photographs them in
Debian's headless Chromium.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from webapp import AS_OF, LATE, build_book, chromium, chromium_missing, served  # noqa: E402

from ledger.queries.registry import run_query  # noqa: E402
from ledger.service import Ledger  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "screenshots"
LAPTOP, PHONE = (1366, 900), (390, 844)
MAX_HEIGHT = 4000


def pages(location: str, early: str) -> list[tuple[str, str]]:
    """(file name, path) of each page to photograph, on the demo's date."""
    as_of = AS_OF.isoformat()
    with Ledger(location) as ledger:
        register = run_query("claims", ledger, {"as_of": as_of})
        claim = register.claims[0].buyer if register.claims else None  # type: ignore[attr-defined]
        book = run_query("exposure", ledger, {"as_of": as_of})
        busiest = max(book.buyers, key=lambda row: Decimal(row.outstanding)).buyer  # type: ignore[attr-defined]
    shots = [("book", f"/?as_of={as_of}"), ("book-overdue", f"/?as_of={as_of}&status=overdue&sort=overdue&order=desc"),
             ("buyer", f"/buyers/{busiest}?as_of={as_of}"), ("obligations", f"/obligations?as_of={as_of}"),
             ("claims", f"/claims?as_of={as_of}"), ("premium", f"/premium?as_of={as_of}"),
             ("turnover", f"/turnover?as_of={as_of}&period=2025-Q4"), ("verify", f"/verify?as_of={as_of}"),
             ("diff", f"/diff?as_of={as_of}&from={early}&to={LATE.strftime('%Y-%m-%dT%H:%M:%S')}"),
             ("book-known-earlier", f"/?as_of={as_of}&known_at={early}&sort=outstanding&order=desc")]
    if claim:
        shots.append(("claim", f"/claims/{claim}?as_of={as_of}"))
    return shots


def photograph(base: str, shots: list[tuple[str, str]], size: tuple[int, int], suffix: str) -> list[Path]:
    """Each page whole (up to MAX_HEIGHT pixels), at `size` (a phone's as a mobile device)."""
    driver = chromium(*size)
    width, height = size
    metrics = {"width": width, "deviceScaleFactor": 1, "mobile": width < 600}
    written = []
    try:
        for name, path in shots:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
            driver.get(base + path)
            full = min(MAX_HEIGHT, driver.execute_script("return document.documentElement.scrollHeight"))
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": max(height, full)})
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            target = OUT / f"{name}{suffix}.png"
            target.write_bytes(base64.b64decode(shot["data"]))
            written.append(target)
    finally:
        driver.quit()
    return written


def main() -> int:
    missing = chromium_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        book = build_book(Path(folder), buyers=60)
        location = book.location
        shots = pages(location, book.early)
        with served(location) as base:
            written = photograph(base, shots, LAPTOP, "")
            written += photograph(base, [s for s in shots if s[0] in ("book", "buyer", "claim")], PHONE, "-phone")
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
