"""`creditledger serve` as a user runs it: a subprocess on a free loopback port, queried over
HTTP, writing with a token, streaming events across a dropped connection, stopped by SIGTERM."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import POLICY_FILE, cli, no_default_db  # noqa: F401 (no_default_db is an autouse fixture)

from ledger.service import Ledger

pytestmark = pytest.mark.slow
CREDITLEDGER = str(Path(sys.executable).with_name("creditledger"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: str, *extra: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [CREDITLEDGER, "serve", "--db", db, "--port", str(self.port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.request("GET", "/api/summary")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve did not start: {self.stop()}") from None
                time.sleep(0.1)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def stop(self) -> str:
        """SIGTERM, then the process's output (it must have stopped within the grace period)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return output


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "ledger.db")
    cli("init", "--db", path)
    cli("policy", "load", str(POLICY_FILE), "--db", path)
    return path


@pytest.fixture
def server(db: str) -> Iterator[Server]:
    running = Server(db)
    yield running
    if running.process.poll() is None:
        running.stop()


def buyer(number: int) -> dict[str, str]:
    return {"type": "buyer_registered", "effective": "2025-01-02", "buyer": f"B{number}", "name": f"Buyer {number}",
            "country": "GB", "key": f"REG-{number}"}


def test_serve_answers_writes_with_a_token_and_stops_on_sigterm(db: str, server: Server) -> None:
    status, summary = server.request("GET", "/api/summary")
    assert status == 200 and summary["events"] == 1
    token = cli("token", "create", "--name", "erp", "--db", db).stdout.strip()
    assert server.request("POST", "/api/events", buyer(1))[0] == 401
    status, outcome = server.request("POST", "/api/events", buyer(1), {"Authorization": f"Bearer {token}"})
    assert status == 201 and len(outcome["recorded"]) == 1
    assert server.request("GET", "/api/summary")[1]["events"] == 2
    output = server.stop()
    assert server.process.returncode == 0, output
    assert "POST /api/events" in output  # the access log is on...
    assert token not in output and token[4:] not in output  # ...and never shows a token


def test_read_only_refuses_writes(db: str) -> None:
    token = cli("token", "create", "--name", "erp", "--db", db).stdout.strip()
    server = Server(db, "--read-only")
    try:
        assert server.request("POST", "/api/events", buyer(1), {"Authorization": f"Bearer {token}"})[0] == 405
    finally:
        assert "Traceback" not in server.stop()
    assert server.process.returncode == 0


def test_serve_binds_beyond_loopback_only_with_tokens(db: str) -> None:
    refused = cli("serve", "--db", db, "--host", "0.0.0.0", ok=False).exception  # noqa: S104 (refused)
    assert "create a write token first" in str(refused)
    cli("token", "create", "--name", "erp", "--db", db)
    cli("token", "revoke", "erp", "--db", db)
    refused = cli("serve", "--db", db, "--host", "0.0.0.0", ok=False).exception  # noqa: S104 (refused)
    assert "create a write token first" in str(refused)  # a revoked token does not count


class Stream:
    """An event stream read line by line over a raw connection, which the test may cut."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", "/api/events/stream", headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type", "").startswith("text/event-stream")

    def next_event(self) -> tuple[int, dict[str, Any]]:
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode().rstrip("\r\n")
            if not line:
                if "data" in fields:
                    return int(fields["id"]), json.loads(fields["data"])
                continue
            name, _, value = line.partition(":")
            if name:  # a line starting with ":" is a comment (keep-alive)
                fields[name] = value.lstrip(" ")

    def cut(self) -> None:
        self.connection.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        self.connection.close()


def test_the_event_stream_resumes_after_a_cut_with_nothing_lost_or_repeated(db: str, server: Server) -> None:
    token = cli("token", "create", "--name", "erp", "--db", db).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    assert server.request("POST", "/api/events", [buyer(n) for n in range(1, 6)], auth)[0] == 201
    stream = Stream(server.port, {"Last-Event-ID": "0"})
    seen = [stream.next_event() for _ in range(3)]
    assert [position for position, _ in seen] == [1, 2, 3]
    assert seen[1][1]["buyer"] == "B1" and seen[1][1]["position"] == 2
    stream.cut()
    assert server.request("POST", "/api/events", [buyer(n) for n in range(6, 9)], auth)[0] == 201
    resumed = Stream(server.port, {"Last-Event-ID": str(seen[-1][0])})
    seen += [resumed.next_event() for _ in range(6)]
    with Ledger(db) as ledger:
        count = ledger.count()
    assert [position for position, _ in seen] == list(range(1, count + 1))
    # A stream opened without a position sends only what is recorded from then on.
    fresh = Stream(server.port, {})
    assert server.request("POST", "/api/events", buyer(9), auth)[0] == 201
    position, event = fresh.next_event()
    assert position == count + 1 and event["buyer"] == "B9"
    resumed.cut()
    started = time.monotonic()
    output = server.stop()  # with `fresh` still open: the stream ends, the server stops cleanly
    assert server.process.returncode == 0 and "Traceback" not in output, output
    assert time.monotonic() - started < 4  # before uvicorn's grace period (5 s) runs out
