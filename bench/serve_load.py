"""The load test of `creditledger serve` (bench/run.py calls `measure` for each size of book).

It starts `creditledger serve --read-only` on the benchmark's ledger, on a free port of
127.0.0.1 and nowhere else, and sends each kind of request a fixed number of times from 8
concurrent clients (threads with one keep-alive connection each), each kind within a fixed
time: one buyer's exposure at a random date, the book's exposure, a claim with its
explanation, and a page of 1,000 events at a random position. It gives latencies p50/p99,
the events page's throughput in events/s, and the serve process's peak memory. The machine's
load average is noted beside them: on a shared machine the latencies are mostly waiting.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # loopback only: a load test never leaves the machine
CLIENTS = 8
TIME_LIMIT = 120.0  # seconds per kind of request at most: no request starts after it
REQUEST_TIMEOUT = 300.0  # seconds one request may take (a claim's explanation on a large book, 8 at once)
REQUESTS = {"buyer_exposure": 800, "book_exposure": 48, "claim": 16, "events_page": 160}


def measure(path: Path | str, size: int) -> dict[str, Any]:
    """The figures of the load test on the ledger at `path`; an error is reported as a figure,
    so that the rest of the benchmark still runs."""
    try:
        return _measure(path, size)
    except Exception as problem:  # the benchmark goes on without these figures
        return {"serve_error": f"{type(problem).__name__}: {problem}"}


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop a serve process: SIGTERM, then SIGKILL if it has not stopped within 30 s."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _get(connection: http.client.HTTPConnection, path: str) -> Any:
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return json.loads(body)


def _load(port: int, count: int, request: Callable[[random.Random], str]) -> tuple[list[float], float]:
    """`count` requests from CLIENTS threads; each request's latency, and the wall time of all."""
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [count]
    deadline = time.monotonic() + TIME_LIMIT
    errors: list[BaseException] = []

    def client(number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                path = request(rng)
                start = time.perf_counter()
                _get(connection, path)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
        except BaseException as problem:
            errors.append(problem)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return latencies, time.perf_counter() - start


def _ms(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1e3, 1)


def _measure(path: Path | str, size: int) -> dict[str, Any]:
    port = _free_port()
    command = [str(Path(sys.executable).with_name("creditledger")), "serve", "--db", str(path),
               "--host", HOST, "--port", str(port), "--read-only"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, Any] = {}
    try:
        connection = _wait(server, port)
        book = _get(connection, "/api/exposure?as_of=2025-12-31")
        buyers = [row["buyer"] for row in book["buyers"]]
        losses = _get(connection, "/api/events?type=insolvency&limit=1")
        claimant = losses[0]["buyer"] if losses else buyers[0]
        last = _get(connection, "/api/summary")["events"]
        connection.close()

        def buyer_exposure(rng: random.Random) -> str:
            as_of = datetime.date(2025, 1, 15) + datetime.timedelta(days=rng.randrange(350))
            return f"/api/exposure?buyer={rng.choice(buyers)}&as_of={as_of}"

        kinds: dict[str, Callable[[random.Random], str]] = {
            "buyer_exposure": buyer_exposure,
            "book_exposure": lambda rng: "/api/exposure?as_of=2025-12-31",
            "claim": lambda rng: f"/api/claims/{claimant}?as_of=2025-12-31&explain=true",
            "events_page": lambda rng: f"/api/events?limit=1000&after={rng.randrange(max(1, last - 1000))}",
        }
        for name, request in kinds.items():
            try:
                latencies, wall = _load(port, REQUESTS[name], request)
            except Exception as problem:  # one kind failing (a timeout) leaves the others' figures
                figures[f"serve_{name}_error"] = f"{type(problem).__name__}: {problem}"
                continue
            figures[f"serve_{name}_p50_ms"] = _ms(latencies, 0.5)
            figures[f"serve_{name}_p99_ms"] = _ms(latencies, 0.99)
            figures[f"serve_{name}_requests"] = len(latencies)
            if name == "events_page":
                figures["serve_events_per_s"] = round(1000 * len(latencies) / wall)
        figures["serve_peak_rss_mib"] = _peak_rss_mib(server.pid)
        figures["serve_load_average"] = round(os.getloadavg()[0], 1)
    finally:
        _stop(server)
    return figures


def _wait(server: subprocess.Popen[bytes], port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 120
    while True:
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        try:
            _get(connection, "/api/summary")
            return connection
        except OSError:
            connection.close()
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("creditledger serve did not start") from None
            time.sleep(0.2)


def _peak_rss_mib(pid: int) -> int:
    """The serve process's peak resident memory (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def main() -> None:
    """Only the load test: `python bench/serve_load.py 10000 100000` builds each book as
    bench/run.py does (the seeded sample book, one import) and measures it."""
    from ledger.service import Ledger
    from ledger.tools import samplebook
    from ledger.vocabulary.terms import parse_policy

    parser = argparse.ArgumentParser(description="creditledger serve load test")
    parser.add_argument("sizes", type=int, nargs="*", default=[10_000, 100_000])
    with tempfile.TemporaryDirectory() as workdir:
        for size in parser.parse_args().sizes:
            policy, rows = samplebook.generate(seed=11, events=size)
            path = Path(workdir) / f"serve-{size}.db"
            with Ledger(str(path)) as ledger:
                ledger.load_policy(parse_policy(policy))
                ledger.record(ledger.parse(list(enumerate(rows, 1)), "book"))
                ledger.exposure_model.catch_up()
            print(json.dumps({str(size): measure(path, size)}, indent=1))


if __name__ == "__main__":
    main()
