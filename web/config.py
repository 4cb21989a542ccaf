"""The one place that turns command-line options into the server's parts.

Embedded defaults — SQLite in the data directory, in-process state, HTTPS with a self-signed
certificate — make ``lophoc serve`` work on a fresh machine; a PostgreSQL URL, a Redis URL and
real certificates turn it into one node of many.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from classroom.directory import LessonDirectory, MemoryDirectory, RedisDirectory
from media.ice import IceSettings
from signaling.limits import Limits

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8443
    tls: bool = True
    cert: Path | None = None
    key: Path | None = None
    data_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    """Origins allowed to open the WebSocket, besides the server's own (same host and port)."""
    ice: IceSettings = field(default_factory=IceSettings)
    limits: Limits = field(default_factory=Limits)
    public_url: str | None = None
    waiting_room: str = "guests"
    """New lessons' waiting-room mode: ``everyone``, ``guests`` (guests and names not on the
    class list wait) or ``nobody``; the teacher changes it during the lesson."""

    node: str = field(
        default_factory=lambda: f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
    )
    """This node's name in the lesson directory (unique per process run)."""

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'lophoc.sqlite3').resolve()}"


def parse_networks(values: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def lesson_directory(settings: Settings, redis: Redis | None) -> LessonDirectory:
    """Where this node learns which node owns a lesson, who is present and which resume
    tokens are live: Redis when the server has one (every node sees the same), else this
    process."""
    if settings.redis_url:
        if redis is None:
            raise ValueError("a Redis URL is configured but no client was opened for it")
        return RedisDirectory(redis)
    return MemoryDirectory()
