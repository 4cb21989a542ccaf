"""Time limits on reading an HTTP request, and a cap on requests still being read.

uvicorn reads a request head for as long as the client keeps sending: a connection that
dribbles one byte a second ("slowloris") holds its socket, and its file descriptor, forever.
At a few hundred of them a real student's upgrade request cannot be accepted any more.

:class:`HttpGuard` holds uvicorn's HTTP protocol (the ``httptools`` one, which
``uvicorn[standard]`` installs) with three limits on what it reads — never on what the
application does once a request has arrived, nor on a WebSocket once upgraded:

- the request head (request line and headers, which is all an upgrade is) must be complete
  ``head_timeout`` seconds after the connection opened, or after the first byte of a request on
  a kept-alive connection;
- the whole request, body included, must have arrived ``request_timeout`` seconds after its
  first byte;
- at most ``max_in_progress`` connections of the process may be waiting for a request to
  arrive; one more closes the connection that has waited longest, so a flood of slow
  connections pushes out its own oldest members, not the student who just arrived.

A connection cut by a limit is closed without a response (a slow client is not owed one) and
counted by reason (``lophoc_http_cut_total{reason}`` in ``/metrics``). The hooks used
(``connection_made``, ``connection_lost``, ``on_message_begin``, ``on_headers_complete``,
``on_message_complete``) are the asyncio protocol's and httptools' parser callbacks;
``tests/security/test_08_slowloris.py`` fails loudly if a uvicorn upgrade stops calling them.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CUT_REASONS = ("head_timeout", "request_timeout", "too_many_in_progress")


@dataclass(frozen=True)
class HttpLimits:
    """How long a client may take to send a request, and how many may be sending one."""

    #: Seconds from the connection (or a kept-alive request's first byte) to the end of the head.
    head_timeout: float = 10.0
    #: Seconds from a request's first byte to its last (body included).
    request_timeout: float = 30.0
    #: Connections of this process still waiting for a request to arrive.
    max_in_progress: int = 512

    def __post_init__(self) -> None:
        if not 0 < self.head_timeout <= self.request_timeout:
            raise ValueError("need 0 < head_timeout <= request_timeout")
        if self.max_in_progress < 1:
            raise ValueError("max_in_progress must be at least 1")


class HttpGuard:
    """One server's read limits: ``protocol`` is the class to give uvicorn (``http=``), and
    ``cuts`` counts the connections it closed, by reason."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.cuts: Counter[str] = Counter(dict.fromkeys(CUT_REASONS, 0))
        cuts = self.cuts

        class GuardedHttpProtocol(_Guarded):
            _limits = limits
            _cuts = cuts
            _waiting: ClassVar[OrderedDict[_Guarded, None]] = OrderedDict()

        self.protocol: type[HttpToolsProtocol] = GuardedHttpProtocol


class _Guarded(HttpToolsProtocol):
    _limits: ClassVar[HttpLimits]
    _cuts: ClassVar[Counter[str]]
    #: This server's connections that are waiting for a request head or body, oldest first.
    _waiting: ClassVar[OrderedDict[_Guarded, None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._request_deadline: float | None = None

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head(self._limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_reading_clock()
        super().connection_lost(exc)

    # -- the request, as httptools parses it ------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:  # a kept-alive connection's next request
            self._await_head(self._limits.head_timeout)
        self._request_deadline = self.loop.time() + self._limits.request_timeout

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.parser.should_upgrade():
            # The upgrade's head is all of it; the WebSocket protocol takes over from here.
            self._stop_reading_clock()
            return
        deadline = self._request_deadline
        self._cancel_timer()
        if deadline is not None:
            self._read_timer = self.loop.call_at(deadline, self._cut, "request_timeout")

    def on_message_complete(self) -> None:
        self._stop_reading_clock()
        super().on_message_complete()

    # -- the clock --------------------------------------------------------------------------

    def _await_head(self, timeout: float) -> None:
        self._cancel_timer()
        self._read_timer = self.loop.call_later(timeout, self._cut, "head_timeout")
        waiting = self._waiting
        waiting[self] = None
        while len(waiting) > self._limits.max_in_progress:
            oldest = next(iter(waiting))
            oldest._cut("too_many_in_progress")

    def _cancel_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _stop_reading_clock(self) -> None:
        self._cancel_timer()
        self._request_deadline = None
        self._waiting.pop(self, None)

    def _cut(self, reason: str) -> None:
        self._stop_reading_clock()
        self._cuts[reason] += 1
        if not self.transport.is_closing():
            self.transport.close()
