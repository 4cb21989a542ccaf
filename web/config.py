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
from typing import TYPE_CHECKING, Any

import uvicorn

from classroom.directory import LessonDirectory, MemoryDirectory, RedisDirectory
from media.ice import IceSettings
from media.turn import TurnSettings
from signaling.limits import Limits
from web.http_guard import HttpLimits

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
    http: HttpLimits = field(default_factory=HttpLimits)
    turn: TurnSettings | None = None
    """The TURN relay students' browsers are given, with credentials minted per participant."""
    metrics_token: str | None = None
    """When set, ``/metrics`` answers only requests with ``Authorization: Bearer <token>``;
    else only requests from this host that came through no proxy."""
    link_key_file: Path | None = None
    """The key join links are signed with (default ``link.key`` in the data directory);
    ``LOPHOC_LINK_SECRET`` overrides it."""
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    """Reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` name the client. From
    any other address (loopback included) those headers are ignored: every per-address limit
    counts the address the connection really comes from."""

    @property
    def link_key_path(self) -> Path:
        return self.link_key_file if self.link_key_file is not None else self.data_dir / "link.key"

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


def uvicorn_config(
    settings: Settings, app: Any, *, log_level: str = "info", **tls: Any
) -> uvicorn.Config:
    """The HTTP server's configuration, the same for ``lophoc serve`` and the tests (``app``
    from ``web.app.create_app``, which holds the request read limits)."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=app.state.http_guard.protocol,
        ws_max_size=settings.limits.max_frame_bytes,  # bigger frames close 1009
        ws_per_message_deflate=False,  # no compression: no compression bombs
        # uvicorn trusts X-Forwarded-For from loopback unless told otherwise: here only
        # from the configured proxies.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=[str(n) for n in settings.trusted_proxies],
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=5,
        **tls,
    )


def lesson_directory(settings: Settings, redis: Redis | None) -> LessonDirectory:
    """Where this node learns which node owns a lesson, who is present and which resume
    tokens are live: Redis when the server has one (every node sees the same), else this
    process."""
    if settings.redis_url:
        if redis is None:
            raise ValueError("a Redis URL is configured but no client was opened for it")
        return RedisDirectory(redis)
    return MemoryDirectory()
