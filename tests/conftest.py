"""Shared fixtures: a real lophoc server on loopback (uvicorn in this event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from media.ice import IceSettings
from web.app import create_app
from web.config import Settings, uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    ws_url: str
    app: Any

    async def create_lesson(
        self, title: str = "Toán 7A", password: str = "mat-khau-lop-7a"
    ) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.base_url}/api/lessons", json={"title": title, "password": password}
            )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        data["password"] = password
        return data


@contextlib.asynccontextmanager
async def run_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    port = free_port()
    # Tests of the waiting room ask for it; the others let participants straight in (once a
    # teacher is present: nobody is admitted before).
    overrides.setdefault("waiting_room", "nobody")
    settings = Settings(
        host="127.0.0.1",
        port=port,
        tls=False,
        data_dir=tmp_path,
        ice=IceSettings.loopback(),
        **overrides,
    )
    app = create_app(settings)
    config = uvicorn_config(settings, app, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "server did not start"
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with run_server(tmp_path) as running:
        yield running
