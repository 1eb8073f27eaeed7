"""uvicorn's HTTP protocol with TCP_NODELAY set on every connection.

With `--workers` above 1 uvicorn binds the listening socket itself, as `socket.socket(family)`,
whose protocol number is 0; asyncio sets TCP_NODELAY only on sockets whose protocol number is
IPPROTO_TCP, so no connection of a worker had it, and each answer (its head and its body sent
apart) waited for the client's delayed acknowledgement: 44 ms at least, against 2 ms with one
worker (docs/scaling.md). Imported only by `creditledger serve`.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Send small writes at once on the transport's TCP socket (a Unix socket has no such option)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, the connection's socket set to TCP_NODELAY first."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport)
        super().connection_made(transport)
