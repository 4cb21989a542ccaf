"""A minimal client of the signaling protocol (docs/protocol.md) and of the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

__all__ = ["HttpError", "Signaling", "SignalingError", "http_request", "ws_url"]

EventHandler = Callable[[str, dict[str, Any]], None]


class SignalingError(Exception):
    """An ``error`` response (``code`` is the protocol's stable error code)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def ws_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + "/ws"
    raise ValueError(f"not an http(s) URL: {base_url}")


def _http(method: str, url: str, body: Any, timeout: float) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


async def http_request(
    method: str, url: str, body: Any = None, within: float = 10.0
) -> tuple[int, str]:
    """``(status, text)`` of one HTTP request (urllib in a thread: a handful per run)."""
    return await asyncio.to_thread(_http, method, url, body, within)


class Signaling:
    """One WebSocket: requests with ids matched to their responses, events to a callback."""

    def __init__(self, ws: ClientConnection, on_event: EventHandler | None) -> None:
        self._ws = ws
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def open(
        cls, url: str, origin: str, on_event: EventHandler | None = None, within: float = 10.0
    ) -> Signaling:
        ws = await connect(url, origin=Origin(origin), open_timeout=within, max_size=1 << 20)
        return cls(ws, on_event)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                kind = message.get("type")
                if kind in ("ok", "error"):
                    future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
                    if future is not None and not future.done():
                        future.set_result(message)
                elif kind == "event" and self._on_event is not None:
                    data = message.get("data")
                    self._on_event(
                        str(message.get("event")), data if isinstance(data, dict) else {}
                    )
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(SignalingError("closed", "socket closed"))
            self._pending.clear()

    async def request(self, kind: str, within: float = 15.0, **fields: Any) -> dict[str, Any]:
        """Send a request; its ``ok.data`` (``SignalingError`` on an ``error`` response)."""
        if self.closed.is_set():
            raise SignalingError("closed", "socket closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._ws.send(json.dumps({"type": kind, "id": request_id, **fields}))
        except ConnectionClosed as exc:
            self._pending.pop(request_id, None)
            raise SignalingError("closed", "socket closed") from exc
        try:
            async with asyncio.timeout(within):
                response = await future
        except TimeoutError as exc:
            self._pending.pop(request_id, None)
            raise SignalingError("timeout", f"no response to {kind}") from exc
        if response.get("type") == "error":
            raise SignalingError(str(response.get("code")), str(response.get("message", "")))
        data = response.get("data")
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
