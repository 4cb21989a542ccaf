"""A raw protocol client for tests: speaks docs/protocol.md over a real WebSocket, and drives
real aiortc peers for publishing and subscribing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

import websockets
from aiortc import MediaStreamTrack, RTCSessionDescription

from tests.peers import Receiver, loopback_pc


class ProtocolError(Exception):
    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__(f"{response.get('code')}: {response.get('message')}")
        self.code = response.get("code")
        self.response = response


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.untagged: list[dict[str, Any]] = []
        self._event_waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.publish_pc: Any = None
        self.subscribe_pc: Any = None
        self._receiver: Receiver | None = None
        self.joined: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._answer_tasks: set[asyncio.Task[Any]] = set()

    @property
    def receiver(self) -> Receiver:
        """What this client's subscribe connection received (after ``subscribe()``)."""
        if self._receiver is None:
            raise AssertionError("this client has not subscribed")
        return self._receiver

    async def connect(self, **kwargs: Any) -> Client:
        self.ws = await websockets.connect(self.url, max_size=None, **kwargs)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                message = json.loads(text)
                if message.get("type") == "event":
                    self.events.append(message)
                    self._on_event(message)
                    for name, fut in list(self._event_waiters):
                        if name == message["event"] and not fut.done():
                            fut.set_result(message["data"])
                            self._event_waiters.remove((name, fut))
                else:
                    pending = self._pending.pop(message.get("id"), None)
                    if pending is not None and not pending.done():
                        pending.set_result(message)
                    else:
                        self.untagged.append(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def _on_event(self, message: dict[str, Any]) -> None:
        if message["event"] == "offer" and self.subscribe_pc is not None:
            task = asyncio.ensure_future(self._answer_offer(message["data"]))
            self._answer_tasks.add(task)
            task.add_done_callback(self._answer_tasks.discard)

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send a request; return ``data`` of ``ok`` or raise ProtocolError."""
        response = await self.call(type_, **fields)
        if response["type"] != "ok":
            raise ProtocolError(response)
        return response["data"]

    async def call(self, type_: str, timeout: float = 15, **fields: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        await self.ws.send(json.dumps({"type": type_, "id": request_id, **fields}))
        return await asyncio.wait_for(fut, timeout)

    async def next_event(self, name: str, timeout: float = 10) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._event_waiters.append((name, fut))
        return await asyncio.wait_for(fut, timeout)

    async def seen(self, name: str, timeout: float = 10) -> dict[str, Any]:
        """The data of the first ``name`` event received so far, or of the next one (for
        events that may arrive before the request that causes them is answered)."""
        for message in self.events:
            if message["event"] == name:
                return dict(message["data"])
        return await self.next_event(name, timeout)

    def saw(self, name: str) -> list[dict[str, Any]]:
        """The data of every ``name`` event received so far."""
        return [m["data"] for m in self.events if m["event"] == name]

    async def join_teacher(self, token: str) -> dict[str, Any]:
        self.joined = await self.request("join", token=token)
        return self.joined

    async def join_student(self, code: str, password: str, name: str) -> dict[str, Any]:
        self.joined = await self.request("join", code=code, password=password, name=name)
        return self.joined

    async def publish(self, *tracks: MediaStreamTrack) -> dict[str, Any]:
        pc = self.publish_pc = loopback_pc()
        for track in tracks:
            pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        data = await self.request("publish", sdp=pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
        self.published.extend(data["producers"])
        return data

    async def subscribe(self) -> dict[str, Any]:
        self.subscribe_pc = loopback_pc()
        self._receiver = Receiver(self.subscribe_pc)
        data = await self.request("subscribe")
        if data.get("sdp"):
            await self._answer_offer(data)
        return data

    async def _answer_offer(self, offer: dict[str, Any]) -> None:
        pc = self.subscribe_pc
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        with contextlib.suppress(ProtocolError, websockets.ConnectionClosed):
            await self.request("answer", sdp=pc.localDescription.sdp, version=offer["version"])

    async def close(self) -> None:
        if self._receiver is not None:
            await self._receiver.close()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
