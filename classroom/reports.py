"""Attendance reports, derived from the event log; frozen, hashed and verifiable.

**Derivation** (:func:`lesson_report`, pure: events in, report out):

1. Each participant's events (by time, then log order) make intervals: ``joined`` and
   ``reconnected`` open one, ``left``, ``replaced`` and ``removed`` close it. An interval still
   open is closed at the cut-off: when the lesson ended, or "now" for a live report.
2. A student is their **roster entry**, whatever device or participant id they used; guests
   (who came in with the lesson password) are grouped by name and listed separately; teachers
   are not in the report. All intervals of one person are merged, so two devices at once
   (the moment before the older one is ``replaced``) never count twice, and a gap of at most
   ``reconnect_grace`` (60 s) is bridged: a weak phone that drops and comes back within a
   minute was there all along.
3. Time counts inside the **lesson window**, which follows what happened (report format
   version 2, :data:`REPORT_VERSION`): from the moment a teacher first joined to the moment the
   last teacher left (a teacher still in the lesson keeps it open: to its scheduled end, or to
   "now" once past it; to the lesson's end once ended). A lesson taught 18:03–18:04 although
   scheduled 18:15–19:00 is measured 18:03–18:04; one that ran ten minutes over, to its actual
   end. Without any teacher event the window is the schedule: scheduled start to scheduled
   end, or to the actual end if the lesson was ended earlier. ``window.basis`` says which
   (``taught`` or ``scheduled``). ``percentage`` is of that window.
4. Status, first match wins, against the **due** times: the scheduled start — or the actual
   start, when the teacher began later — and the scheduled end — or the actual end, when the
   lesson ended sooner. Starting early or running over never makes anyone late or early:

   * ``absent`` — no time inside the window;
   * ``late`` — first seen in the window more than ``late_after`` (5 min) after the due start;
   * ``left_early`` — last seen more than ``left_early_before`` (5 min) before the due end,
     and not in the lesson now;
   * ``present`` — otherwise.

   ``late`` and ``left_early`` are also given as separate flags, since a student can be both.
   ``closed_by_recovery`` marks a student whose time was cut short by a server crash (their
   interval was closed at the server's last heartbeat), so a teacher can tell that from
   truancy.

**Freezing.** When the teacher closes the report, its JSON is written once, canonically
(sorted keys, no spaces, UTF-8), with its SHA-256 and the id of the last event it includes.
:func:`verify_frozen` checks two things: the stored body still has its hash (catches an
edited report), and recomputing from the stored events up to that id gives the same
attendance (catches edited events). Both tables are append-only in the database as well;
this is what still catches someone who switched the triggers off. Publish or print the hash
to make even a rewrite of report *and* hash detectable.

**Versions.** A frozen report is recomputed by the rules it was frozen with. Version 1 (no
``version`` key; frozen before the window followed the teaching) measured every lesson by its
schedule, and :func:`lesson_report` still computes it on request, so such reports keep
verifying; version 2 adds ``version``, ``window.basis``, ``window.due_start``,
``window.due_end``, ``window.taught_start`` and ``window.taught_end``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, Literal, Protocol
from zoneinfo import ZoneInfo

from classroom.attendance import (
    CLOSING_KINDS,
    OPENING_KINDS,
    AttendanceEvent,
    AttendanceStore,
)
from classroom.errors import ClassroomError
from classroom.lessons import Lesson, LessonStore
from classroom.links import LinkStore

log = logging.getLogger(__name__)

Status = Literal["present", "late", "left_early", "absent"]
WindowBasis = Literal["scheduled", "taught"]
REPORT_VERSION: Final = 2
"""The report format (and rules) new reports are derived and frozen with; see the docstring."""
REPORT_VERSIONS: Final = frozenset({1, 2})
STATUSES: Final[tuple[Status, ...]] = ("present", "late", "left_early", "absent")
SCHOOL_TIMEZONE: Final = "Asia/Ho_Chi_Minh"
MAX_REPORT_RANGE: Final = timedelta(days=400)
"""Longest class report range: a school year and then some, to bound one request's work."""


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    """The thresholds, stored in every frozen report so it can be recomputed exactly."""

    late_after: timedelta = timedelta(minutes=5)
    left_early_before: timedelta = timedelta(minutes=5)
    reconnect_grace: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        for value in (self.late_after, self.left_early_before, self.reconnect_grace):
            if value < timedelta(0):
                raise ValueError("report thresholds cannot be negative")

    def to_json(self) -> dict[str, int]:
        return {
            "late_after_seconds": int(self.late_after.total_seconds()),
            "left_early_before_seconds": int(self.left_early_before.total_seconds()),
            "reconnect_grace_seconds": int(self.reconnect_grace.total_seconds()),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportPolicy:
        return cls(
            late_after=timedelta(seconds=int(data["late_after_seconds"])),
            left_early_before=timedelta(seconds=int(data["left_early_before_seconds"])),
            reconnect_grace=timedelta(seconds=int(data["reconnect_grace_seconds"])),
        )


@dataclass(frozen=True, slots=True)
class RosterLine:
    """A student expected at the lesson."""

    roster_entry_id: str
    student_code: str
    full_name: str


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime
    closed_by_recovery: bool = False


@dataclass(frozen=True, slots=True)
class Presence:
    """One person's merged time in the lesson."""

    intervals: tuple[Interval, ...]
    seconds_in_window: int
    first_join: datetime | None
    last_leave: datetime | None
    first_in_window: datetime | None
    last_in_window: datetime | None
    still_present: bool
    closed_by_recovery: bool
    removed: bool
    devices_replaced: int


@dataclass(frozen=True, slots=True)
class StudentLine:
    roster_entry_id: str
    student_code: str
    full_name: str
    status: Status
    late: bool
    left_early: bool
    presence: Presence
    percentage: float


@dataclass(frozen=True, slots=True)
class GuestLine:
    name: str
    presence: Presence
    percentage: float


@dataclass(frozen=True, slots=True)
class LessonReport:
    lesson: Lesson
    policy: ReportPolicy
    as_of: datetime
    last_event_id: int | None
    window_start: datetime
    window_end: datetime
    students: tuple[StudentLine, ...]
    guests: tuple[GuestLine, ...]
    version: int = REPORT_VERSION
    basis: WindowBasis = "scheduled"
    due_start: datetime | None = None
    due_end: datetime | None = None
    taught_start: datetime | None = None
    taught_end: datetime | None = None

    def window_json(self) -> dict[str, Any]:
        window: dict[str, Any] = {
            "start": _iso(self.window_start),
            "end": _iso(self.window_end),
            "seconds": _seconds(self.window_end - self.window_start),
        }
        if self.version >= 2:
            window.update(
                basis=self.basis,
                due_start=_iso(self.due_start),
                due_end=_iso(self.due_end),
                taught_start=_iso(self.taught_start),
                taught_end=_iso(self.taught_end),
            )
        return window

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data; the frozen body is exactly this, canonically."""
        lesson = self.lesson
        summary = {status: 0 for status in STATUSES}
        for line in self.students:
            summary[line.status] += 1
        version: dict[str, Any] = {} if self.version == 1 else {"version": self.version}
        body: dict[str, Any] = {
            **version,
            "lesson": {
                "id": lesson.id,
                "code": lesson.code,
                "title": lesson.title,
                "class_id": lesson.class_id,
                "teacher_id": lesson.teacher_id,
                "scheduled_start": _iso(lesson.scheduled_start),
                "scheduled_end": _iso(lesson.scheduled_end),
                "ended_at": _iso(lesson.ended_at),
            },
            "policy": self.policy.to_json(),
            "as_of": _iso(self.as_of),
            "last_event_id": self.last_event_id,
            "window": self.window_json(),
            "summary": {**summary, "guests": len(self.guests)},
            "students": [
                {
                    "roster_entry_id": line.roster_entry_id,
                    "student_code": line.student_code,
                    "full_name": line.full_name,
                    "status": line.status,
                    "late": line.late,
                    "left_early": line.left_early,
                    "percentage": line.percentage,
                    **_presence_json(line.presence),
                }
                for line in self.students
            ],
            "guests": [
                {"name": line.name, "percentage": line.percentage, **_presence_json(line.presence)}
                for line in self.guests
            ],
        }
        return body


def _presence_json(presence: Presence) -> dict[str, Any]:
    return {
        "first_join": _iso(presence.first_join),
        "last_leave": _iso(presence.last_leave),
        "seconds_present": presence.seconds_in_window,
        "minutes_present": round(presence.seconds_in_window / 60, 1),
        "still_present": presence.still_present,
        "closed_by_recovery": presence.closed_by_recovery,
        "removed": presence.removed,
        "devices_replaced": presence.devices_replaced,
        "intervals": [
            {
                "start": _iso(interval.start),
                "end": _iso(interval.end),
                "closed_by_recovery": interval.closed_by_recovery,
            }
            for interval in presence.intervals
        ],
    }


# --- derivation ---------------------------------------------------------------------------------


def lesson_window(lesson: Lesson, as_of: datetime) -> tuple[datetime, datetime]:
    """The scheduled window: scheduled start to scheduled end, cut short if the lesson ended
    earlier. Ad-hoc lessons (no schedule) run from creation to their end, or to ``as_of``
    while live. (Version 1 reports use it for every lesson.)"""
    start = lesson.scheduled_start or lesson.created_at
    end = lesson.scheduled_end or lesson.ended_at or as_of
    if lesson.ended_at is not None:
        end = min(end, lesson.ended_at)
    return start, max(start, end)


@dataclass(frozen=True, slots=True)
class Window:
    """Where attendance is counted (``start``–``end``), what it is measured against for
    late and early (``due_start``, ``due_end``), and what the teachers' events said."""

    start: datetime
    end: datetime
    basis: WindowBasis
    due_start: datetime
    due_end: datetime
    taught_start: datetime | None = None
    taught_end: datetime | None = None


def taught_span(
    teacher_events: Sequence[AttendanceEvent],
    *,
    cutoff: datetime,
    ended: bool,
    grace: timedelta,
) -> tuple[datetime, datetime, bool] | None:
    """From the first teacher's join to the last teacher's leave, and whether a teacher is
    in the lesson now (the last interval still open and the lesson not ended). None when no
    teacher has been in it."""
    raw, _, still_open = _intervals(teacher_events, cutoff=cutoff, grace=grace)
    if not raw:
        return None
    start = min(interval.start for interval in raw)
    end = max(interval.end for interval in raw)
    return start, end, still_open and not ended


def attendance_window(
    lesson: Lesson,
    teacher_events: Sequence[AttendanceEvent],
    *,
    as_of: datetime,
    grace: timedelta,
) -> Window:
    """The version 2 window (see the module docstring)."""
    scheduled_start, scheduled_end = lesson_window(lesson, as_of)
    due_start = lesson.scheduled_start or lesson.created_at
    due_end = scheduled_end
    ended = lesson.ended_at is not None
    cutoff = min(as_of, lesson.ended_at) if lesson.ended_at is not None else as_of
    span = taught_span(teacher_events, cutoff=cutoff, ended=ended, grace=grace)
    if span is None or span[1] <= span[0]:
        return Window(scheduled_start, scheduled_end, "scheduled", due_start, due_end)
    taught_start, taught_end, teaching = span
    start = taught_start
    end = max(lesson.scheduled_end or cutoff, cutoff) if teaching else taught_end
    basis: WindowBasis = (
        "scheduled" if (start, end) == (scheduled_start, scheduled_end) else "taught"
    )
    return Window(
        start=start,
        end=end,
        basis=basis,
        # Clamped into the window: a lesson taught wholly before its scheduled start had
        # no one late, and one ended before its scheduled end had no one leave after it.
        due_start=min(max(due_start, start), end),
        due_end=max(min(due_end, end), start),
        taught_start=taught_start,
        taught_end=None if teaching else taught_end,
    )


def lesson_report(
    lesson: Lesson,
    roster: Sequence[RosterLine],
    events: Iterable[AttendanceEvent],
    *,
    as_of: datetime,
    policy: ReportPolicy | None = None,
    version: int = REPORT_VERSION,
) -> LessonReport:
    """The report of one lesson from its events; see the module docstring for the rules.

    ``roster`` is who was expected (everyone given a personal link for the lesson); a student
    with events but not on it is still reported. Pure and deterministic: the same arguments
    always give the same report, which is what makes a frozen report verifiable. ``version``
    picks the rules (:data:`REPORT_VERSIONS`); an old frozen report is recomputed by its own.
    """
    policy = policy if policy is not None else ReportPolicy()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if version not in REPORT_VERSIONS:
        raise ValueError(f"unknown report version {version!r}")
    cutoff = min(as_of, lesson.ended_at) if lesson.ended_at is not None else as_of

    ordered = sorted(
        (event for event in events if event.lesson_id == lesson.id), key=lambda e: (e.at, e.id)
    )
    if version == 1:
        window_start, window_end = lesson_window(lesson, as_of)
        window = Window(window_start, window_end, "scheduled", window_start, window_end)
    else:
        teachers = [event for event in ordered if event.role == "teacher"]
        window = attendance_window(lesson, teachers, as_of=as_of, grace=policy.reconnect_grace)
    window_start, window_end = window.start, window.end
    window_seconds = (window_end - window_start).total_seconds()

    last_event_id = max((event.id for event in ordered), default=None)
    by_person: dict[tuple[str, str], list[AttendanceEvent]] = defaultdict(list)
    guest_names: dict[str, str] = {}
    student_names: dict[str, str] = {}
    for event in ordered:
        if event.role != "student":
            continue
        if event.roster_entry_id is not None:
            by_person[("student", event.roster_entry_id)].append(event)
            student_names.setdefault(event.roster_entry_id, event.display_name)
        else:
            key = _guest_key(event.display_name)
            by_person[("guest", key)].append(event)
            guest_names.setdefault(key, event.display_name)

    def presence_of(key: tuple[str, str]) -> Presence:
        return _presence(
            by_person.get(key, []),
            cutoff=cutoff,
            ended=lesson.ended_at is not None,
            window=(window_start, window_end),
            grace=policy.reconnect_grace,
        )

    students: list[StudentLine] = []
    listed: set[str] = set()
    expected = sorted(
        {line.roster_entry_id: line for line in roster}.values(),
        key=lambda line: (line.student_code, line.roster_entry_id),
    )
    expected_ids = {line.roster_entry_id for line in expected}
    unlisted = sorted(
        entry for kind, entry in by_person if kind == "student" and entry not in expected_ids
    )
    for line in [
        *expected,
        *(RosterLine(entry, "", student_names[entry]) for entry in unlisted),
    ]:
        if line.roster_entry_id in listed:
            continue
        listed.add(line.roster_entry_id)
        presence = presence_of(("student", line.roster_entry_id))
        status, late, left_early = _status(presence, window.due_start, window.due_end, policy)
        students.append(
            StudentLine(
                roster_entry_id=line.roster_entry_id,
                student_code=line.student_code,
                full_name=line.full_name,
                status=status,
                late=late,
                left_early=left_early,
                presence=presence,
                percentage=_percentage(presence.seconds_in_window, window_seconds),
            )
        )
    guests = [
        GuestLine(
            name=guest_names[key],
            presence=(presence := presence_of(("guest", key))),
            percentage=_percentage(presence.seconds_in_window, window_seconds),
        )
        for kind, key in sorted(by_person)
        if kind == "guest"
    ]
    return LessonReport(
        lesson=lesson,
        policy=policy,
        as_of=as_of,
        last_event_id=last_event_id,
        window_start=window_start,
        window_end=window_end,
        students=tuple(students),
        guests=tuple(guests),
        version=version,
        basis=window.basis,
        due_start=window.due_start,
        due_end=window.due_end,
        taught_start=window.taught_start,
        taught_end=window.taught_end,
    )


def _intervals(
    events: Sequence[AttendanceEvent], *, cutoff: datetime, grace: timedelta
) -> tuple[list[Interval], list[Interval], bool]:
    """One person's raw intervals (events up to ``cutoff``; one still open closes there),
    the same merged across gaps of at most ``grace``, and whether one is still open."""
    open_since: dict[str, datetime] = {}
    raw: list[Interval] = []
    for event in events:
        if event.at > cutoff:
            continue
        if event.kind in OPENING_KINDS:
            open_since.setdefault(event.participant_id, event.at)
        elif event.kind in CLOSING_KINDS and event.participant_id in open_since:
            start = open_since.pop(event.participant_id)
            raw.append(Interval(start, event.at, event.recovered))
    still_open = bool(open_since)
    raw.extend(Interval(start, cutoff) for start in open_since.values())

    merged: list[Interval] = []
    for interval in sorted(raw, key=lambda i: (i.start, i.end)):
        if merged and interval.start - merged[-1].end <= grace:
            last = merged[-1]
            if interval.end >= last.end:
                merged[-1] = Interval(last.start, interval.end, interval.closed_by_recovery)
            continue
        merged.append(interval)
    return raw, merged, still_open


def _presence(
    events: Sequence[AttendanceEvent],
    *,
    cutoff: datetime,
    ended: bool,
    window: tuple[datetime, datetime],
    grace: timedelta,
) -> Presence:
    removed = any(event.kind == "removed" for event in events)
    replaced = sum(event.kind == "replaced" for event in events)
    raw, merged, still_open = _intervals(events, cutoff=cutoff, grace=grace)

    start, end = window
    inside = [
        (max(i.start, start), min(i.end, end)) for i in merged if i.end > start and i.start < end
    ]
    seconds = sum((b - a for a, b in inside), timedelta(0))
    still_present = still_open and not ended
    return Presence(
        intervals=tuple(merged),
        seconds_in_window=_seconds(seconds),
        first_join=merged[0].start if merged else None,
        last_leave=None if still_present or not merged else merged[-1].end,
        first_in_window=inside[0][0] if inside else None,
        last_in_window=inside[-1][1] if inside else None,
        still_present=still_present,
        # From the raw intervals: a crash stays flagged even when a quick rejoin bridged it.
        closed_by_recovery=any(interval.closed_by_recovery for interval in raw),
        removed=removed,
        devices_replaced=replaced,
    )


def _status(
    presence: Presence, start: datetime, end: datetime, policy: ReportPolicy
) -> tuple[Status, bool, bool]:
    if presence.seconds_in_window <= 0 or presence.first_in_window is None:
        return "absent", False, False
    assert presence.last_in_window is not None
    late = presence.first_in_window - start > policy.late_after
    left_early = not presence.still_present and end - presence.last_in_window > (
        policy.left_early_before
    )
    if late:
        return "late", late, left_early
    if left_early:
        return "left_early", late, left_early
    return "present", late, left_early


def _percentage(seconds: int, window_seconds: float) -> float:
    if window_seconds <= 0:
        return 0.0
    return round(min(100.0, 100.0 * seconds / window_seconds), 1)


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


def _guest_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- class reports ------------------------------------------------------------------------------


def class_report(
    class_id: str,
    class_name: str,
    roster: Sequence[RosterLine],
    reports: Sequence[Mapping[str, Any]],
    *,
    first_day: date,
    last_day: date,
) -> dict[str, Any]:
    """Per student over many lessons (e.g. a semester): lessons expected, attended (present,
    late or left early), each status, and minutes. Takes lesson reports as JSON data, so
    frozen and live reports count alike; each lesson says whether it was frozen."""
    rows: dict[str, dict[str, Any]] = {}
    for line in sorted(roster, key=lambda line: (line.student_code, line.roster_entry_id)):
        rows[line.roster_entry_id] = _class_row(
            line.roster_entry_id, line.student_code, line.full_name
        )
    for report in reports:
        for student in report["students"]:
            row = rows.get(student["roster_entry_id"])
            if row is None:
                row = rows[student["roster_entry_id"]] = _class_row(
                    student["roster_entry_id"], student["student_code"], student["full_name"]
                )
            row["lessons"] += 1
            row[student["status"]] += 1
            row["attended"] += student["status"] != "absent"
            row["minutes_present"] = round(row["minutes_present"] + student["minutes_present"], 1)
            row["seconds_present"] += student["seconds_present"]
    for row in rows.values():
        row["attendance_rate"] = (
            round(100.0 * row["attended"] / row["lessons"], 1) if row["lessons"] else None
        )
    return {
        "class": {"id": class_id, "name": class_name},
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        "lessons": [
            {
                "id": report["lesson"]["id"],
                "title": report["lesson"]["title"],
                "scheduled_start": report["lesson"]["scheduled_start"],
                "frozen": bool(report.get("frozen")),
                "basis": report["window"].get("basis", "scheduled"),
                "version": report.get("version", 1),
            }
            for report in reports
        ],
        "students": list(rows.values()),
    }


def _class_row(roster_entry_id: str, student_code: str, full_name: str) -> dict[str, Any]:
    return {
        "roster_entry_id": roster_entry_id,
        "student_code": student_code,
        "full_name": full_name,
        "lessons": 0,
        "attended": 0,
        "present": 0,
        "late": 0,
        "left_early": 0,
        "absent": 0,
        "minutes_present": 0.0,
        "seconds_present": 0,
    }


# --- freezing and verifying ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrozenReport:
    lesson_id: str
    closed_at: datetime
    closed_by: str | None
    last_event_id: int | None
    body: str
    content_hash: str

    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class Verification:
    """``content_hash_ok``: the stored report still has its hash. ``events_match``: the stored
    events still give the same attendance."""

    content_hash_ok: bool
    events_match: bool

    @property
    def ok(self) -> bool:
        return self.content_hash_ok and self.events_match

    def to_json(self) -> dict[str, bool]:
        return {
            "ok": self.ok,
            "content_hash_ok": self.content_hash_ok,
            "events_match": self.events_match,
        }


def canonical_json(data: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def freeze(report: LessonReport, *, closed_by: str | None) -> FrozenReport:
    body = canonical_json(report.to_json())
    return FrozenReport(
        lesson_id=report.lesson.id,
        closed_at=report.as_of,
        closed_by=closed_by,
        last_event_id=report.last_event_id,
        body=body,
        content_hash=content_hash(body),
    )


def report_version(data: Mapping[str, Any]) -> int:
    """The format of a report's JSON: its ``version``, 1 when it has none (reports frozen
    before versions existed). ``ValueError`` for a version this code does not know."""
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in REPORT_VERSIONS:
        raise ValueError(f"unknown report version {version!r}")
    return version


def verify_frozen(frozen: FrozenReport, recomputed: LessonReport | None) -> Verification:
    """Compare a frozen report with its hash and with a recomputation from the events (by the
    rules of the report's own version; None when there is nothing to compare with).

    Names and student codes are left out of the second comparison: a roster correction made
    after the lesson (a misspelt name) is not tampering with attendance.
    """
    hash_ok = content_hash(frozen.body) == frozen.content_hash
    if recomputed is None:
        return Verification(hash_ok, False)
    try:
        stored = json.loads(frozen.body)
        events_match = _facts(stored) == _facts(recomputed.to_json())
    except (ValueError, KeyError, TypeError):
        events_match = False
    return Verification(hash_ok, events_match)


def _facts(report: Mapping[str, Any]) -> Any:
    students = [
        {key: value for key, value in line.items() if key not in ("full_name", "student_code")}
        for line in report["students"]
    ]
    return canonical_json(
        {
            "version": report.get("version", 1),
            "as_of": report["as_of"],
            "last_event_id": report["last_event_id"],
            "policy": report["policy"],
            "window": report["window"],
            "summary": report["summary"],
            "students": sorted(students, key=lambda line: line["roster_entry_id"]),
            "guests": report["guests"],
        }
    )


# --- the service --------------------------------------------------------------------------------


class ReportStore(Protocol):
    """Frozen reports: written once, never changed (the database refuses UPDATE/DELETE)."""

    async def add(self, frozen: FrozenReport) -> bool:
        """Store it; False if the lesson already has a frozen report (nothing written)."""
        ...

    async def get(self, lesson_id: str) -> FrozenReport | None: ...

    async def for_lessons(self, lesson_ids: Sequence[str]) -> dict[str, FrozenReport]: ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ReportView:
    """A lesson's report as shown: the frozen one once closed, else derived now."""

    data: dict[str, Any]
    frozen: FrozenReport | None = None

    def to_json(self) -> dict[str, Any]:
        frozen = self.frozen
        return {
            **self.data,
            "frozen": None
            if frozen is None
            else {
                "closed_at": _iso(frozen.closed_at),
                "closed_by": frozen.closed_by,
                "content_hash": frozen.content_hash,
            },
        }


@dataclass
class ReportService:
    """Reports from the stores. Authorisation is the caller's (``classroom.accounts``)."""

    lessons: LessonStore
    links: LinkStore
    attendance: AttendanceStore
    store: ReportStore
    policy: ReportPolicy = field(default_factory=ReportPolicy)
    zone: tzinfo = field(default_factory=lambda: ZoneInfo(SCHOOL_TIMEZONE))
    clock: Callable[[], datetime] = _now

    async def roster_of(self, lesson: Lesson) -> list[RosterLine]:
        """Who was expected: every student given a personal link for the lesson."""
        return [
            RosterLine(link.roster_entry_id, link.student_code, link.full_name)
            for link in await self.links.links(lesson.id)
        ]

    async def derive(self, lesson: Lesson, *, as_of: datetime | None = None) -> LessonReport:
        events = await self.attendance.events(lesson.id)
        return lesson_report(
            lesson,
            await self.roster_of(lesson),
            events,
            as_of=as_of or self.clock(),
            policy=self.policy,
        )

    async def view(self, lesson: Lesson) -> ReportView:
        frozen = await self.store.get(lesson.id)
        if frozen is not None:
            return ReportView(frozen.data(), frozen)
        return ReportView((await self.derive(lesson)).to_json())

    async def close(self, lesson: Lesson, *, by: str | None) -> FrozenReport:
        """Freeze the report. The lesson must have ended or be past its scheduled end; closing
        also ends it, so no one joins and no link is issued after the report is final.
        ``report_closed`` if it already is."""
        if await self.store.get(lesson.id) is not None:
            raise ClassroomError.report_closed()
        now = self.clock()
        if not lesson.ended and (lesson.scheduled_end is None or now < lesson.scheduled_end):
            raise ClassroomError.lesson_not_over()
        ended = await self.lessons.mark_ended(lesson.id, now)
        if ended is None:
            raise ClassroomError.not_found()
        frozen = freeze(await self.derive(ended, as_of=now), closed_by=by)
        if not await self.store.add(frozen):
            raise ClassroomError.report_closed()
        log.info("report of lesson %s closed", lesson.id)
        return frozen

    async def verify(self, lesson: Lesson) -> Verification | None:
        """None if the report is not closed yet."""
        frozen = await self.store.get(lesson.id)
        if frozen is None:
            return None
        try:
            data = frozen.data()
            policy = ReportPolicy.from_json(data["policy"])
            version = report_version(data)
        except (ValueError, KeyError, TypeError, AttributeError):
            return verify_frozen(frozen, None)  # unreadable: it cannot match any events
        events = await self.attendance.events(lesson.id, up_to_id=frozen.last_event_id or 0)
        recomputed = lesson_report(
            lesson,
            await self.roster_of(lesson),
            events,
            as_of=frozen.closed_at,
            policy=policy,
            version=version,
        )
        return verify_frozen(frozen, recomputed)

    async def class_report(
        self,
        class_id: str,
        class_name: str,
        roster: Sequence[RosterLine],
        first_day: date,
        last_day: date,
    ) -> dict[str, Any]:
        """Every lesson of the class scheduled to start on ``first_day`` … ``last_day``
        (inclusive, in the school's time zone)."""
        if last_day < first_day or last_day - first_day > MAX_REPORT_RANGE:
            raise ClassroomError.invalid_range(MAX_REPORT_RANGE.days)
        start = datetime.combine(first_day, time(0), self.zone)
        end = datetime.combine(last_day + timedelta(days=1), time(0), self.zone)
        lessons = await self.lessons.class_lessons([class_id], start, end)
        frozen = await self.store.for_lessons([lesson.id for lesson in lessons])
        reports: list[dict[str, Any]] = []
        for lesson in lessons:
            if lesson.id in frozen:
                reports.append({**frozen[lesson.id].data(), "frozen": True})
            else:
                reports.append((await self.derive(lesson)).to_json())
        return class_report(
            class_id, class_name, roster, reports, first_day=first_day, last_day=last_day
        )
