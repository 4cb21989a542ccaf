"""The school's records services, built together over one open database.

:func:`open_records` is what the web app and the admin command line call: it loads (or, on
first start, creates) the join-link key and wires accounts, rosters, links, attendance,
reports and the safety records (audit log, bans, incidents) to their SQL stores. Lessons stay
built by the caller, which passes ``records.links`` to
:class:`~classroom.lessons.LessonService` so that students can be admitted by link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from classroom.accounts import AccountService
from classroom.attendance import AttendanceRecorder, default_node_id
from classroom.links import LinkService, load_link_secret
from classroom.passwords import PasswordHasher
from classroom.ratelimit import FailureLimiter
from classroom.reports import SCHOOL_TIMEZONE, ReportPolicy, ReportService
from classroom.rosters import RosterService
from classroom.safety import SafetyService
from classroom.storage import Database


@dataclass(frozen=True, slots=True)
class Records:
    accounts: AccountService
    rosters: RosterService
    links: LinkService
    attendance: AttendanceRecorder
    reports: ReportService
    safety: SafetyService


def _now() -> datetime:
    return datetime.now(UTC)


async def open_records(
    database: Database,
    limiter: FailureLimiter,
    *,
    hasher: PasswordHasher | None = None,
    link_secret: str | None = None,
    link_key_file: Path | None = None,
    create_link_key: bool = True,
    node_id: str | None = None,
    policy: ReportPolicy | None = None,
    zone: tzinfo | None = None,
    clock: Callable[[], datetime] = _now,
) -> Records:
    """``link_secret``: configured key (hex or base64url, ≥ 32 bytes), else the one in
    ``link_key_file``, created there if missing and ``create_link_key``
    (:func:`classroom.links.load_link_secret`).
    ``node_id``: this node's name in attendance events (default :func:`default_node_id`).
    ``zone``: the school's time zone for dates and CSV times (default Asia/Ho_Chi_Minh)."""
    secret = await load_link_secret(
        database.secrets, link_secret, key_file=link_key_file, create=create_link_key
    )
    links = LinkService(database.links, secret, clock=clock)
    node = node_id if node_id is not None else default_node_id()
    attendance = AttendanceRecorder(database.attendance, node, clock=clock)
    return Records(
        accounts=AccountService(database.accounts, limiter, hasher=hasher, clock=clock),
        rosters=RosterService(database.rosters, clock=clock),
        links=links,
        attendance=attendance,
        reports=ReportService(
            lessons=database.lessons,
            links=database.links,
            attendance=database.attendance,
            store=database.reports,
            policy=policy if policy is not None else ReportPolicy(),
            zone=zone if zone is not None else ZoneInfo(SCHOOL_TIMEZONE),
            clock=clock,
        ),
        safety=SafetyService(database.safety, attendance.node_id, clock=clock),
    )
