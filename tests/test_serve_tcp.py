"""`creditledger serve --workers N`: every connection of a worker has TCP_NODELAY (ledger/web/tcp.py).

uvicorn binds a multi-worker listening socket with protocol number 0, so asyncio's own
TCP_NODELAY never applied and each answer waited for a delayed acknowledgement (44 ms).
"""

from __future__ import annotations

import socket
from typing import Any

from ledger.web.tcp import no_delay


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


def test_a_connection_accepted_as_a_worker_accepts_it_is_set_to_send_at_once():
    with socket.socket(socket.AF_INET) as listening:  # as uvicorn binds it for several workers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        with socket.create_connection(listening.getsockname()) as client:
            accepted, _ = listening.accept()
            with accepted:
                assert accepted.proto == 0  # why asyncio left it alone
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                no_delay(_Transport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                client.sendall(b"x")
                assert accepted.recv(1) == b"x"


def test_a_unix_socket_is_left_alone():
    left, right = socket.socketpair()
    with left, right:
        no_delay(_Transport(left))  # type: ignore[arg-type]  # no TCP option on it: nothing raised
