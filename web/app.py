"""The Starlette application: HTTP API, the signaling WebSocket, health and metrics.

``create_app(settings)`` builds everything from ``Settings`` inside the app's lifespan, so the
same factory serves ``lophoc serve``, the tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from classroom.attendance import HEARTBEAT_INTERVAL, AttendanceRecorder
from classroom.lessons import LessonService
from classroom.links import LinkKeyError
from media.port import LocalMedia, MediaPort
from media.service import MediaService, MediaSettings
from signaling.errors import CloseCode
from signaling.hub import Hub
from signaling.session import Session

from . import api
from .config import Settings, lesson_directory
from .http_guard import HttpGuard

if TYPE_CHECKING:
    from classroom.records import Records

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@dataclass
class Services:
    settings: Settings
    lessons: LessonService
    media: MediaService
    """The SFU of this process, for ``/metrics`` and shutting down."""
    media_port: MediaPort
    """The door signaling drives the SFU through."""
    hub: Hub
    close: Any
    records: Records | None = None


async def build_services(settings: Settings) -> Services:
    import os

    from classroom.records import open_records
    from classroom.storage import open_database

    database = await open_database(settings.db_url)
    if settings.redis_url:
        from redis.asyncio import Redis

        from classroom.ratelimit import RedisFailureLimiter

        redis = Redis.from_url(settings.redis_url)
        limiter: Any = RedisFailureLimiter(redis)
    else:
        from classroom.ratelimit import MemoryFailureLimiter

        redis = None
        limiter = MemoryFailureLimiter()
    try:
        records = await open_records(
            database,
            limiter,
            link_secret=os.environ.get("LOPHOC_LINK_SECRET") or None,
            link_key_file=settings.link_key_path,
            # Several nodes (Redis) must share one key: none of them makes its own.
            create_link_key=settings.redis_url is None,
        )
    except LinkKeyError as exc:
        logger.error("lophoc cannot start: %s", exc)
        await database.close()
        if redis is not None:
            await redis.aclose()
        raise
    lessons = LessonService(
        database.lessons, limiter, links=records.links, teachers=records.accounts
    )
    media = MediaService(
        MediaSettings(
            ice=dataclasses.replace(
                settings.ice, candidates_per_pc=settings.limits.candidates_per_pc
            )
        )
    )
    port = LocalMedia(media)
    hub = Hub(
        waiting_room=settings.waiting_room,
        directory=lesson_directory(settings, redis),
        node=settings.node,
    )
    hub.background(hub.follow(port))
    # Intervals a previous run of this node left open (a crash, kill -9) are closed at its
    # last heartbeat, before this run's first heartbeat moves that mark.
    await records.attendance.recover()
    heartbeat = asyncio.ensure_future(_beat(records.attendance))

    async def close() -> None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        for session in list(hub.sockets.values()):
            await session.shutdown(1001, "server_stopping")
        await hub.close()
        await media.close()
        await database.close()
        if redis is not None:
            await redis.aclose()

    return Services(settings, lessons, media, port, hub, close, records=records)


#: Seconds between heartbeats: well inside the 15 s the attendance records promise.
HEARTBEAT_SECONDS = min(10.0, HEARTBEAT_INTERVAL.total_seconds())


async def _beat(attendance: AttendanceRecorder) -> None:
    """Record that this node is alive every ``HEARTBEAT_SECONDS``."""
    while True:
        try:
            await attendance.heartbeat()
        except Exception:
            logger.exception("attendance heartbeat failed")
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


ESTIMATE_BUCKETS = (100_000, 200_000, 300_000, 500_000, 800_000, 1_200_000, 2_000_000, 4_000_000)
"""Histogram buckets of subscribers' downlink estimates (bits per second)."""


class _Collector:
    def __init__(self, services: Services, http_guard: HttpGuard) -> None:
        self.services = services
        self.http_guard = http_guard

    def collect(self) -> Any:
        cut = CounterMetricFamily(
            "lophoc_http_cut",
            "HTTP connections closed because a request was not read in time "
            "(head_timeout, request_timeout) or too many were waiting (too_many_in_progress).",
            labels=["reason"],
        )
        for reason, count in self.http_guard.cuts.items():
            cut.add_metric([reason], count)
        yield cut
        for name, value in self.services.media.counters().items():
            family = CounterMetricFamily(f"lophoc_rtp_{name}", f"Media plane counter {name}.")
            family.add_metric([], value)
            yield family
        summary = self.services.media.downlink_summary()
        states = GaugeMetricFamily(
            "lophoc_downlinks",
            "Connected subscribers by what their downlink carries (ok, weak, audio_only).",
            labels=["state"],
        )
        for state, count in summary["states"].items():
            states.add_metric([state], count)
        yield states
        estimates = HistogramMetricFamily(
            "lophoc_downlink_estimate_bps",
            "Downlink bandwidth estimates of connected subscribers, bits per second.",
        )
        buckets = [
            (str(b), sum(1 for e in summary["estimates"] if e <= b)) for b in ESTIMATE_BUCKETS
        ]
        buckets.append(("+Inf", len(summary["estimates"])))
        estimates.add_metric([], buckets, sum_value=sum(summary["estimates"]))
        yield estimates
        lessons = GaugeMetricFamily("lophoc_live_lessons", "Lessons with someone connected.")
        lessons.add_metric([], len(self.services.hub.lessons))
        yield lessons
        people = GaugeMetricFamily("lophoc_participants", "Participants connected to this node.")
        people.add_metric([], self.services.hub.participant_count())
        yield people


def metrics_allowed(request: Request, token: str | None) -> bool:
    """``/metrics`` tells how many lessons and people are live: with a configured token only
    to a request bearing it; without one only to this host itself, and not through a proxy
    (a request that names a forwarded client came from elsewhere)."""
    if token is not None:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    if not metrics_allowed(request, services.settings.metrics_token):
        return api._error(
            403,
            "forbidden",
            "Metrics are served to this host only, or with the configured token.",
        )
    registry = CollectorRegistry()
    registry.register(
        _Collector(request.app.state.services, request.app.state.http_guard)  # type: ignore[arg-type]
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def lesson_socket(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    if not api.origin_allowed(websocket):
        await websocket.close(code=CloseCode.POLICY)  # before accept: the client sees HTTP 403
        return
    await websocket.accept()
    limits = services.settings.limits
    outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=limits.outbound_messages)
    closing: dict[str, Any] = {}

    def send(text: str) -> None:
        try:
            outbox.put_nowait(text)
        except asyncio.QueueFull:
            # A client that does not read its events must not grow the server's memory.
            closing.setdefault("code", CloseCode.SLOW_CONSUMER)
            with contextlib.suppress(asyncio.QueueFull):
                outbox.put_nowait(None)

    async def close(code: int, reason: str) -> None:
        closing.setdefault("code", code)
        closing.setdefault("reason", reason)
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(None)

    async def writer() -> None:
        try:
            while True:
                text = await outbox.get()
                if text is None:
                    break
                await websocket.send_text(text)
        except Exception:
            pass
        finally:
            if websocket.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(
                        code=closing.get("code", 1000), reason=closing.get("reason", "")[:100]
                    )

    client = websocket.client.host if websocket.client else "unknown"
    session = Session(
        hub=services.hub,
        lessons=services.lessons,
        media=services.media_port,
        limits=limits,
        client_address=client,
        send=send,
        close=close,
        attendance=services.records.attendance if services.records else None,
        safety=services.records.safety if services.records else None,
        turn=services.settings.turn,
    )
    writer_task = asyncio.ensure_future(writer())
    timeout_task = asyncio.ensure_future(session.expire_unjoined())
    try:
        if session.too_many_unauthenticated():
            await session.shutdown(CloseCode.POLICY, "too_many_connections")
            return
        while session.state != "closed":
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frame = message.get("text")
            if frame is None:
                frame = message.get("bytes") or b""
            await session.handle_frame(frame)
    except WebSocketDisconnect:
        pass
    except RuntimeError:
        pass  # receive after the socket closed
    finally:
        timeout_task.cancel()
        await session.shutdown(1000, "disconnected")
        with contextlib.suppress(asyncio.QueueFull):
            outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer_task, timeout=5)


PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The client is plain ES modules from this origin; nothing inline, nothing third-party.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
}


def _page(name: str) -> Any:
    async def page(request: Request) -> Response:
        return FileResponse(STATIC / name, headers=PAGE_HEADERS)

    return page


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or await build_services(settings)
        try:
            yield
        finally:
            if own:
                await app.state.services.close()

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        *api.routes,
        WebSocketRoute("/ws", lesson_socket),
        Route("/", _page("index.html")),
        Route("/teach", _page("teach.html")),
        Route("/l/{code}", _page("lesson.html")),
        Route("/login", _page("login.html")),
        Route("/lessons", _page("lessons.html")),
        Route("/lessons/{lesson_id}/report", _page("report.html")),
        Route("/classes/{class_id}/report", _page("class-report.html")),
        Route("/classes/{class_id}/roster", _page("roster.html")),
        Route("/admin", _page("admin.html")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.http_guard = HttpGuard(settings.http)
    return app
