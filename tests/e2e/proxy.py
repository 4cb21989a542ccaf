"""A TCP proxy on loopback whose live connections the test can cut, to simulate a lost network.

The browser loads the pages and opens the signaling WebSocket through the proxy; media (UDP)
goes straight to the server. :meth:`TcpProxy.cut` aborts every live connection on both sides
(``SO_LINGER`` 0, then ``transport.abort()``: a reset, no WebSocket close frame, exactly what a
phone losing its Wi-Fi looks like to both ends) and keeps accepting new connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any


def _reset_on_close(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _Half(asyncio.Protocol):
    """One side of a proxied connection; forwards what it reads to its peer side."""

    def __init__(self, link: _Link, *, wait_for_peer: bool) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.wait_for_peer = wait_for_peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.wait_for_peer:
            transport.pause_reading()  # until the upstream connection exists

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write(data)

    def eof_received(self) -> bool:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            if peer.transport.can_write_eof():
                peer.transport.write_eof()
        return True  # keep the other direction open until both sides are done

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.side_lost(self)


class _Link:
    """A client connection and its upstream connection to the server."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.client = _Half(self, wait_for_peer=True)
        self.upstream = _Half(self, wait_for_peer=False)
        self.client.peer = self.upstream
        self.upstream.peer = self.client
        self.done = asyncio.get_running_loop().create_future()

    def sides(self) -> list[asyncio.Transport]:
        return [h.transport for h in (self.client, self.upstream) if h.transport is not None]

    def side_lost(self, half: _Half) -> None:
        other = half.peer
        if other is not None and other.transport is not None and not other.transport.is_closing():
            other.transport.close()  # orderly: flush what is buffered, then FIN
        if all(t.is_closing() for t in self.sides()) and not self.done.done():
            self.done.set_result(None)

    def abort(self) -> None:
        for transport in self.sides():
            _reset_on_close(transport)
            transport.abort()


class TcpProxy:
    """``async with TcpProxy(port) as proxy``: listens on 127.0.0.1:``proxy.port`` and forwards
    every connection to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def live_connections(self) -> int:
        return len(self._links)

    async def start(self) -> TcpProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def _accept(self) -> asyncio.Protocol:
        link = _Link(self)
        self._links.add(link)
        self.accepted += 1
        link.done.add_done_callback(lambda _: self._links.discard(link))
        task = asyncio.ensure_future(self._connect_upstream(link))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return link.client

    async def _connect_upstream(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: link.upstream, self.target_host, self.target_port)
        except OSError:
            link.abort()
            return
        upstream = link.upstream.transport
        client = link.client.transport
        assert upstream is not None
        if client is None or client.is_closing():
            upstream.close()
        else:
            client.resume_reading()

    def cut(self) -> int:
        """Abort every live connection (both sides); new connections are still accepted.
        Returns how many connections were cut."""
        links = list(self._links)
        for link in links:
            link.abort()
        self.cuts += 1
        return len(links)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        # Let the aborted transports run connection_lost before the loop goes away.
        await asyncio.sleep(0)

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
