"""Reports: attendance derived from events (pure), frozen with a hash that exposes tampering,
per-class summaries and CSV (the stored parts on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from classroom.attendance import AttendanceEvent, Attendee
from classroom.errors import ClassroomError
from classroom.lessons import Lesson
from classroom.reports import (
    FrozenReport,
    ReportPolicy,
    RosterLine,
    canonical_json,
    class_report,
    content_hash,
    freeze,
    lesson_report,
    report_version,
    verify_frozen,
)
from classroom.storage import Database
from tests.classroom.support import LESSON_END, LESSON_START, FakeNow, School

LESSON = Lesson(
    id="11111111-1111-4111-8111-111111111111",
    code="123456789",
    title="Toán 5A",
    created_at=LESSON_START - timedelta(days=1),
    ended_at=None,
    class_id="22222222-2222-4222-8222-222222222222",
    teacher_id="33333333-3333-4333-8333-333333333333",
    scheduled_start=LESSON_START,
    scheduled_end=LESSON_END,
)
AN = RosterLine("aaaaaaaa-0000-4000-8000-000000000001", "HS001", "Nguyễn Văn An")
NGOC = RosterLine("aaaaaaaa-0000-4000-8000-000000000002", "HS002", "Trần Thị Bích Ngọc")
DUC = RosterLine("aaaaaaaa-0000-4000-8000-000000000003", "HS003", "Lê Hoàng Đức")
ROSTER = [AN, NGOC, DUC]
AFTER_LESSON = LESSON_END + timedelta(hours=1)


class Log:
    """Builds a lesson's events; times are seconds after the scheduled start."""

    def __init__(self) -> None:
        self.events: list[AttendanceEvent] = []
        self._ids = count(1)

    def add(
        self,
        kind: str,
        participant: str,
        seconds: float,
        who: RosterLine | str,
        *,
        recovered: bool = False,
        role: str = "student",
        lesson_id: str = LESSON.id,
    ) -> Log:
        at = LESSON_START + timedelta(seconds=seconds)
        guest = isinstance(who, str)
        self.events.append(
            AttendanceEvent(
                id=next(self._ids),
                lesson_id=lesson_id,
                participant_id=participant,
                kind=kind,  # type: ignore[arg-type]
                role=role,  # type: ignore[arg-type]
                roster_entry_id=None if guest or role != "student" else who.roster_entry_id,  # type: ignore[union-attr]
                guest=guest and role == "student",
                display_name=who if isinstance(who, str) else who.full_name,
                node_id="node-a",
                reason="closed_by_recovery" if recovered else None,
                at=at,
                recorded_at=at,
                recovered=recovered,
            )
        )
        return self

    def stay(self, participant: str, who: RosterLine | str, start: float, end: float) -> Log:
        return self.add("joined", participant, start, who).add("left", participant, end, who)


def minutes(value: float) -> float:
    return value * 60


def report(log: Log, *, lesson: Lesson = LESSON, as_of=AFTER_LESSON, **policy: timedelta):  # type: ignore[no-untyped-def]
    return lesson_report(lesson, ROSTER, log.events, as_of=as_of, policy=ReportPolicy(**policy))


def line(data: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in data["students"] if s["student_code"] == code)


# --- statuses ----------------------------------------------------------------------------------


def test_present_late_left_early_and_absent() -> None:
    log = (
        Log()
        .stay("p1", AN, minutes(-2), minutes(46))  # the whole lesson
        .stay("p2", NGOC, minutes(6), minutes(45))  # six minutes late
        .stay("p3", DUC, 0, minutes(39))  # six minutes early
    )
    data = report(log).to_json()
    an, ngoc, duc = (line(data, c) for c in ("HS001", "HS002", "HS003"))
    assert (an["status"], an["percentage"], an["minutes_present"]) == ("present", 100.0, 45.0)
    assert an["first_join"] == "2025-09-08T00:28:00Z"
    assert an["last_leave"] == "2025-09-08T01:16:00Z"
    assert (ngoc["status"], ngoc["late"], ngoc["left_early"]) == ("late", True, False)
    assert ngoc["minutes_present"] == 39.0 and ngoc["percentage"] == 86.7
    assert (duc["status"], duc["late"], duc["left_early"]) == ("left_early", False, True)
    assert data["summary"] == {"present": 1, "late": 1, "left_early": 1, "absent": 0, "guests": 0}


def test_thresholds_are_more_than_five_minutes_and_configurable() -> None:
    log = Log().stay("p1", AN, minutes(5), minutes(45)).stay("p2", NGOC, 0, minutes(40))
    data = report(log).to_json()
    assert line(data, "HS001")["status"] == "present"  # exactly 5 min late is on time
    assert line(data, "HS002")["status"] == "present"  # exactly 5 min early is fine
    later = Log().stay("p1", AN, minutes(8), minutes(45))
    assert line(report(later).to_json(), "HS001")["status"] == "late"
    relaxed = report(later, late_after=timedelta(minutes=10)).to_json()
    assert line(relaxed, "HS001")["status"] == "present"
    assert relaxed["policy"]["late_after_seconds"] == 600


def test_late_and_left_early_are_both_flagged() -> None:
    data = report(Log().stay("p1", AN, minutes(10), minutes(30))).to_json()
    an = line(data, "HS001")
    assert (an["status"], an["late"], an["left_early"]) == ("late", True, True)


def test_absent_students_and_time_outside_the_lesson() -> None:
    log = (
        Log()
        .stay("p1", AN, minutes(-20), minutes(-10))  # before the lesson only
        .stay("p2", NGOC, minutes(50), minutes(60))  # after it only
    )
    data = report(log).to_json()
    for code in ("HS001", "HS002", "HS003"):
        assert line(data, code)["status"] == "absent"
        assert line(data, code)["percentage"] == 0.0
    assert line(data, "HS003")["first_join"] is None
    assert line(data, "HS001")["first_join"] is not None  # seen, just not during the lesson
    assert data["summary"]["absent"] == 3


def test_a_student_who_came_back_late_after_an_early_visit_is_late() -> None:
    log = Log().stay("p1", AN, minutes(-5), minutes(-1)).stay("p2", AN, minutes(20), minutes(45))
    assert line(report(log).to_json(), "HS001")["status"] == "late"


# --- continuity ---------------------------------------------------------------------------------


def test_a_reconnect_within_60_seconds_continues_the_interval() -> None:
    log = (
        Log()
        .add("joined", "p1", 0, AN)
        .add("left", "p1", minutes(10), AN)
        .add("reconnected", "p1", minutes(11), AN)
        .add("left", "p1", minutes(45), AN)
    )
    an = line(report(log).to_json(), "HS001")
    assert an["intervals"] == [
        {
            "start": "2025-09-08T00:30:00Z",
            "end": "2025-09-08T01:15:00Z",
            "closed_by_recovery": False,
        }
    ]
    assert (an["status"], an["percentage"]) == ("present", 100.0)


def test_a_gap_over_60_seconds_is_time_away() -> None:
    log = (
        Log()
        .add("joined", "p1", 0, AN)
        .add("left", "p1", minutes(10), AN)
        .add("reconnected", "p1", minutes(10) + 61, AN)
        .add("left", "p1", minutes(45), AN)
    )
    an = line(report(log).to_json(), "HS001")
    assert len(an["intervals"]) == 2
    assert an["seconds_present"] == 45 * 60 - 61
    assert an["status"] == "present"


def test_a_rejoin_with_a_new_connection_within_60_seconds_also_continues() -> None:
    log = Log().stay("p1", AN, 0, minutes(20)).stay("p2", AN, minutes(20) + 30, minutes(45))
    assert len(line(report(log).to_json(), "HS001")["intervals"]) == 1


def test_a_second_device_replacing_the_first_never_doubles_time() -> None:
    log = (
        Log()
        .add("joined", "phone", 0, AN)
        .add("joined", "laptop", minutes(20), AN)  # both connected for a moment
        .add("replaced", "phone", minutes(20) + 1, AN)
        .add("left", "laptop", minutes(45), AN)
    )
    an = line(report(log).to_json(), "HS001")
    assert an["seconds_present"] == 45 * 60
    assert an["percentage"] == 100.0
    assert an["devices_replaced"] == 1
    assert len(an["intervals"]) == 1


def test_overlapping_devices_count_once_even_without_a_replaced_event() -> None:
    log = Log().stay("a", AN, 0, minutes(30)).stay("b", AN, minutes(10), minutes(45))
    assert line(report(log).to_json(), "HS001")["seconds_present"] == 45 * 60


def test_repeated_closes_and_opens_are_harmless() -> None:
    log = (
        Log()
        .add("left", "p1", -10, AN)  # a close with nothing open
        .add("joined", "p1", 0, AN)
        .add("reconnected", "p1", 30, AN)  # already open
        .add("left", "p1", minutes(45), AN)
        .add("left", "p1", minutes(46), AN)
    )
    assert line(report(log).to_json(), "HS001")["seconds_present"] == 45 * 60


# --- guests, teachers, flags ---------------------------------------------------------------------


def test_guests_are_listed_separately_and_teachers_not_at_all() -> None:
    log = (
        Log()
        .stay("g1", "Khách Dự Giờ", 0, minutes(15))
        .stay("g2", "khách dự giờ", minutes(15) + 20, minutes(30))  # same person, new connection
        .stay("g3", "Phụ Huynh", minutes(5), minutes(10))
        .add("joined", "t1", 0, "Teacher", role="teacher")
        .add("left", "t1", minutes(45), "Teacher", role="teacher")
    )
    data = report(log).to_json()
    assert [s["status"] for s in data["students"]] == ["absent"] * 3
    assert [(g["name"], g["minutes_present"]) for g in data["guests"]] == [
        ("Khách Dự Giờ", 30.0),
        ("Phụ Huynh", 5.0),
    ]
    assert data["guests"][0]["percentage"] == 66.7
    assert data["summary"]["guests"] == 2


def test_recovered_removed_and_still_present_are_flagged() -> None:
    log = (
        Log()
        .add("joined", "p1", 0, AN)
        .add("left", "p1", minutes(20), AN, recovered=True)
        .stay("p2", NGOC, 0, minutes(10))
        .add("removed", "p2", minutes(10), NGOC)
        .add("joined", "p3", 0, DUC)
    )
    live = report(log, as_of=LESSON_START + timedelta(minutes=25)).to_json()
    an, ngoc, duc = (line(live, c) for c in ("HS001", "HS002", "HS003"))
    assert an["closed_by_recovery"] is True
    assert an["intervals"][0]["closed_by_recovery"] is True
    assert ngoc["removed"] is True
    assert (duc["still_present"], duc["last_leave"], duc["status"]) == (True, None, "present")
    assert duc["minutes_present"] == 25.0


def test_a_lesson_ended_early_is_measured_to_its_end() -> None:
    ended = LESSON_START + timedelta(minutes=30)
    lesson = replace(LESSON, ended_at=ended)
    log = Log().add("joined", "p1", 0, AN).stay("p2", NGOC, 0, minutes(20))
    data = report(log, lesson=lesson).to_json()
    an = line(data, "HS001")
    assert data["window"]["seconds"] == 30 * 60
    assert (an["status"], an["percentage"], an["still_present"]) == ("present", 100.0, False)
    assert an["last_leave"] == "2025-09-08T01:00:00Z"
    assert line(data, "HS002")["status"] == "left_early"


# --- the window follows the teaching (version 2) --------------------------------------------------


def teacher(log: Log, start: float, end: float | None = None) -> Log:
    log.add("joined", "t1", start, "Teacher", role="teacher")
    if end is not None:
        log.add("left", "t1", end, "Teacher", role="teacher")
    return log


def test_a_lesson_taught_before_its_schedule_is_measured_when_it_was_taught() -> None:
    # Scheduled 07:30-08:15; taught 07:18-07:19 and ended then. Everyone was there.
    ended = LESSON_START - timedelta(minutes=11)
    lesson = replace(LESSON, ended_at=ended)
    log = teacher(Log(), minutes(-12), minutes(-11))
    log.stay("p1", AN, minutes(-12), minutes(-11)).stay("p2", NGOC, minutes(-12) + 5, minutes(-11))
    data = report(log, lesson=lesson).to_json()
    assert data["version"] == 2
    assert data["window"] == {
        "start": "2025-09-08T00:18:00Z",
        "end": "2025-09-08T00:19:00Z",
        "seconds": 60,
        "basis": "taught",
        "due_start": "2025-09-08T00:19:00Z",
        "due_end": "2025-09-08T00:19:00Z",
        "taught_start": "2025-09-08T00:18:00Z",
        "taught_end": "2025-09-08T00:19:00Z",
    }
    assert [(s["student_code"], s["status"], s["percentage"]) for s in data["students"]] == [
        ("HS001", "present", 100.0),
        ("HS002", "present", 91.7),
        ("HS003", "absent", 0.0),
    ]
    # The same events by the old rules: a window of nothing, everyone absent.
    old = lesson_report(lesson, ROSTER, log.events, as_of=AFTER_LESSON, version=1).to_json()
    assert "version" not in old and set(old["window"]) == {"start", "end", "seconds"}
    assert old["window"]["seconds"] == 0
    assert {s["status"] for s in old["students"]} == {"absent"}


def test_an_early_start_counts_from_it_and_lateness_from_the_schedule() -> None:
    log = teacher(Log(), minutes(-10), minutes(45))
    log.stay("p1", AN, minutes(-10), minutes(45))
    log.stay("p2", NGOC, minutes(4), minutes(45))  # after the early start, on time by schedule
    log.stay("p3", DUC, minutes(6), minutes(45))  # six minutes after the scheduled start
    data = report(log).to_json()
    assert data["window"]["basis"] == "taught"
    assert data["window"]["seconds"] == 55 * 60
    assert data["window"]["due_start"] == "2025-09-08T00:30:00Z"
    an, ngoc, duc = (line(data, code) for code in ("HS001", "HS002", "HS003"))
    assert (an["status"], an["percentage"]) == ("present", 100.0)
    assert (ngoc["status"], ngoc["late"], ngoc["percentage"]) == ("present", False, 74.5)
    assert (duc["status"], duc["late"]) == ("late", True)


def test_a_lesson_that_ran_over_is_measured_to_its_end_and_leaving_on_time_is_not_early() -> None:
    log = teacher(Log(), 0, minutes(60))
    log.stay("p1", AN, 0, minutes(60)).stay("p2", NGOC, 0, minutes(45))
    log.stay("p3", DUC, 0, minutes(39))
    data = report(log).to_json()
    assert (data["window"]["basis"], data["window"]["seconds"]) == ("taught", 60 * 60)
    assert data["window"]["due_end"] == "2025-09-08T01:15:00Z"  # the scheduled end
    an, ngoc, duc = (line(data, code) for code in ("HS001", "HS002", "HS003"))
    assert (an["status"], an["percentage"]) == ("present", 100.0)
    assert (ngoc["status"], ngoc["left_early"], ngoc["percentage"]) == ("present", False, 75.0)
    assert (duc["status"], duc["left_early"]) == ("left_early", True)


def test_a_late_start_makes_no_one_late_who_came_with_the_teacher() -> None:
    log = teacher(Log(), minutes(10), minutes(45))
    log.stay("p1", AN, minutes(10), minutes(45)).stay("p2", NGOC, minutes(16), minutes(45))
    data = report(log).to_json()
    assert data["window"]["start"] == data["window"]["due_start"] == "2025-09-08T00:40:00Z"
    assert line(data, "HS001")["status"] == "present"
    assert line(data, "HS002")["status"] == "late"


def test_a_lesson_taught_on_schedule_keeps_the_scheduled_window() -> None:
    log = teacher(Log(), 0, minutes(45)).stay("p1", AN, 0, minutes(45))
    data = report(log).to_json()
    assert data["window"]["basis"] == "scheduled"
    assert data["window"]["seconds"] == 45 * 60


def test_no_teacher_at_all_means_the_schedule() -> None:
    data = report(Log().stay("p1", AN, minutes(-12), minutes(-11))).to_json()
    assert data["window"]["basis"] == "scheduled"
    assert data["window"]["taught_start"] is None
    assert line(data, "HS001")["status"] == "absent"


def test_a_teacher_still_teaching_keeps_the_window_open() -> None:
    log = teacher(Log(), minutes(-5)).add("joined", "p1", minutes(-5), AN)
    during = report(log, as_of=LESSON_START + timedelta(minutes=20)).to_json()
    assert during["window"]["end"] == "2025-09-08T01:15:00Z"  # to the scheduled end, at least
    assert during["window"]["taught_end"] is None
    assert line(during, "HS001")["still_present"] is True
    over = report(log, as_of=LESSON_END + timedelta(minutes=7)).to_json()
    assert over["window"]["end"] == "2025-09-08T01:22:00Z"  # running over: until now
    assert line(over, "HS001")["percentage"] == 100.0
    ended = replace(LESSON, ended_at=LESSON_END + timedelta(minutes=3))
    closed = report(log, lesson=ended).to_json()
    assert closed["window"]["end"] == closed["window"]["taught_end"] == "2025-09-08T01:18:00Z"


def test_a_teacher_dropping_for_a_while_does_not_split_the_window() -> None:
    log = teacher(Log(), minutes(-3), minutes(10))
    teacher(log, minutes(20), minutes(50))
    log.stay("p1", AN, minutes(-3), minutes(50))
    data = report(log).to_json()
    assert (data["window"]["start"], data["window"]["end"]) == (
        "2025-09-08T00:27:00Z",
        "2025-09-08T01:20:00Z",
    )
    assert line(data, "HS001")["percentage"] == 100.0


def test_unknown_report_versions_are_refused() -> None:
    with pytest.raises(ValueError):
        lesson_report(LESSON, ROSTER, [], as_of=AFTER_LESSON, version=3)


def test_unlisted_students_other_lessons_and_order() -> None:
    stranger = RosterLine("aaaaaaaa-0000-4000-8000-000000000009", "", "Hồ Văn Lạ")
    log = (
        Log()
        .stay("p9", stranger, 0, minutes(45))
        .add("joined", "px", 0, AN, lesson_id="99999999-9999-4999-8999-999999999999")
    )
    data = report(log).to_json()
    assert [s["student_code"] for s in data["students"]] == ["HS001", "HS002", "HS003", ""]
    assert data["students"][3]["full_name"] == "Hồ Văn Lạ"
    assert line(data, "HS001")["status"] == "absent"


def test_the_report_does_not_depend_on_the_order_events_arrive_in() -> None:
    log = (
        Log()
        .stay("p1", AN, 0, minutes(20))
        .stay("p2", AN, minutes(20) + 30, minutes(45))
        .stay("g", "Khách", 0, minutes(5))
    )
    expected = canonical_json(report(log).to_json())
    for seed in range(5):
        shuffled = Log()
        shuffled.events = log.events[:]
        random.Random(seed).shuffle(shuffled.events)
        assert canonical_json(report(shuffled).to_json()) == expected


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["joined", "left", "reconnected", "replaced", "removed", "admitted"]),
            st.sampled_from(["p1", "p2", "p3"]),
            st.integers(-600, 3600),
            st.sampled_from([AN, NGOC, "Khách"]),
        ),
        max_size=40,
    )
)
def test_any_event_log_gives_a_sane_report(
    events: list[tuple[str, str, int, RosterLine | str]],
) -> None:
    log = Log()
    for kind, participant, seconds, who in events:
        log.add(kind, participant, seconds, who)
    data = report(log).to_json()
    assert len(data["students"]) == 3
    for entry in [*data["students"], *data["guests"]]:
        assert 0 <= entry["seconds_present"] <= 45 * 60
        assert 0.0 <= entry["percentage"] <= 100.0
        starts = [i["start"] for i in entry["intervals"]]
        assert starts == sorted(starts)
    for student in data["students"]:
        assert (student["status"] == "absent") == (student["seconds_present"] == 0)


# --- freezing and verifying (pure) ---------------------------------------------------------------


def frozen_and_log() -> tuple[FrozenReport, Log]:
    log = Log().stay("p1", AN, 0, minutes(45)).stay("p2", NGOC, minutes(7), minutes(45))
    return freeze(report(log), closed_by=None), log


def test_a_frozen_report_verifies_against_its_hash_and_events() -> None:
    frozen, log = frozen_and_log()
    assert frozen.content_hash == content_hash(frozen.body)
    assert json.loads(frozen.body)["last_event_id"] == 4
    assert verify_frozen(frozen, report(log)).ok


def test_an_edited_frozen_report_fails_its_hash() -> None:
    frozen, log = frozen_and_log()
    tampered = replace(frozen, body=frozen.body.replace('"late"', '"present"', 1))
    result = verify_frozen(tampered, report(log))
    assert not result.content_hash_ok and not result.events_match
    rehashed = replace(tampered, content_hash=content_hash(tampered.body))
    result = verify_frozen(rehashed, report(log))
    assert result.content_hash_ok and not result.events_match  # the events still disagree


def test_edited_events_no_longer_match_the_frozen_report() -> None:
    frozen, log = frozen_and_log()
    log.events[2] = replace(log.events[2], at=LESSON_START)
    result = verify_frozen(frozen, report(log))
    assert result.content_hash_ok and not result.events_match


V1_FROZEN = json.loads((Path(__file__).parent / "data" / "frozen-report-v1.json").read_text())
"""A report frozen by the version 1 rules (before ``version`` existed), as stored then: the
lesson taught 07:18-07:19 and ended, scheduled 07:30-08:15."""


def v1_log() -> Log:
    log = teacher(Log(), minutes(-12))
    log.stay("p1", AN, minutes(-12), minutes(-11))
    log.stay("p2", NGOC, minutes(-12) + 5, minutes(-11))
    return log.add("left", "t1", minutes(-11), "Teacher", role="teacher")


def test_a_report_frozen_by_version_1_still_verifies_by_its_own_rules() -> None:
    frozen = FrozenReport(
        lesson_id=LESSON.id,
        closed_at=datetime.fromisoformat(V1_FROZEN["closed_at"]),
        closed_by=None,
        last_event_id=6,
        body=V1_FROZEN["body"],
        content_hash=V1_FROZEN["content_hash"],
    )
    data = frozen.data()
    assert report_version(data) == 1
    lesson = replace(LESSON, ended_at=LESSON_START - timedelta(minutes=11))
    log = v1_log()
    as_of = frozen.closed_at
    by_v1 = lesson_report(lesson, ROSTER, log.events, as_of=as_of, version=1)
    assert verify_frozen(frozen, by_v1).ok
    # Recomputed by today's rules the attendance differs: that is why the version matters.
    by_v2 = lesson_report(lesson, ROSTER, log.events, as_of=as_of)
    assert verify_frozen(frozen, by_v2).content_hash_ok
    assert not verify_frozen(frozen, by_v2).events_match
    # And a version 2 report is not passed off as version 1.
    new = freeze(by_v2, closed_by=None)
    assert verify_frozen(new, by_v2).ok and not verify_frozen(new, by_v1).events_match


@pytest.mark.parametrize("version", [0, 3, "2", True, None])
def test_a_report_of_an_unknown_version_cannot_be_read(version: object) -> None:
    with pytest.raises(ValueError):
        report_version({"version": version})


def test_garbage_in_a_frozen_body_fails_verification() -> None:
    frozen, log = frozen_and_log()
    broken = replace(frozen, body="{not json")
    assert not verify_frozen(broken, report(log)).ok


# --- class reports (pure) -----------------------------------------------------------------------


def test_class_report_counts_lessons_per_student() -> None:
    first = report(Log().stay("p1", AN, 0, minutes(45)).stay("p2", NGOC, minutes(10), minutes(45)))
    second = report(Log().stay("p1", AN, 0, minutes(20)))
    data = class_report(
        LESSON.class_id or "",
        "5A",
        ROSTER,
        [first.to_json(), {**second.to_json(), "frozen": True}],
        first_day=date(2025, 9, 1),
        last_day=date(2026, 1, 15),
    )
    rows = {row["student_code"]: row for row in data["students"]}
    expected = {
        "lessons": 2,
        "attended": 2,
        "present": 1,
        "left_early": 1,
        "absent": 0,
        "minutes_present": 65.0,
        "attendance_rate": 100.0,
    }
    assert {key: rows["HS001"][key] for key in expected} == expected
    assert (rows["HS002"]["attended"], rows["HS002"]["late"], rows["HS002"]["absent"]) == (1, 1, 1)
    assert rows["HS003"]["attendance_rate"] == 0.0
    assert [lesson["frozen"] for lesson in data["lessons"]] == [False, True]
    assert [lesson["basis"] for lesson in data["lessons"]] == ["scheduled", "scheduled"]
    assert rows["HS001"]["seconds_present"] == 65 * 60


# --- stored reports (SQLite and PostgreSQL) -------------------------------------------------------


def attendee(school: School, code: str) -> Attendee:
    link = school.links[code]
    return Attendee("student", link.full_name, roster_entry_id=link.roster_entry_id)


async def hold_lesson(school: School, now: FakeNow) -> None:
    recorder, lesson = school.records.attendance, school.lesson.id
    now.set(LESSON_START - timedelta(minutes=1))
    await recorder.joined(lesson, "p_an", attendee(school, "HS001"))
    now.set(LESSON_START + timedelta(minutes=8))
    await recorder.joined(lesson, "p_ngoc", attendee(school, "HS002"))
    await recorder.joined(lesson, "p_guest", Attendee("student", "Khách Dự Giờ", guest=True))
    now.set(LESSON_END)
    for pid, code in (("p_an", "HS001"), ("p_ngoc", "HS002")):
        await recorder.left(lesson, pid, attendee(school, code))
    await recorder.left(lesson, "p_guest", Attendee("student", "Khách Dự Giờ", guest=True))


async def test_a_live_report_comes_from_the_stored_events(school: School, now: FakeNow) -> None:
    await hold_lesson(school, now)
    view = await school.records.reports.view(school.lesson)
    data = view.to_json()
    assert data["frozen"] is None
    assert [(s["student_code"], s["status"]) for s in data["students"]] == [
        ("HS001", "present"),
        ("HS002", "late"),
        ("HS003", "absent"),
    ]
    assert [g["name"] for g in data["guests"]] == ["Khách Dự Giờ"]


async def test_closing_needs_the_lesson_to_be_over_and_happens_once(
    school: School, now: FakeNow
) -> None:
    reports = school.records.reports
    now.set(LESSON_START + timedelta(minutes=20))
    with pytest.raises(ClassroomError) as refused:
        await reports.close(school.lesson, by=school.teacher.id)
    assert refused.value.code == "lesson_not_over"
    await hold_lesson(school, now)
    frozen = await reports.close(school.lesson, by=school.teacher.id)
    assert frozen.closed_at == LESSON_END and frozen.closed_by == school.teacher.id
    ended = await school.lessons.get_lesson(school.lesson.id)
    assert ended is not None and ended.ended_at == LESSON_END
    with pytest.raises(ClassroomError) as again:
        await reports.close(school.lesson, by=school.teacher.id)
    assert again.value.code == "report_closed"


async def test_a_lesson_ended_by_the_teacher_can_be_closed_early(
    school: School, now: FakeNow
) -> None:
    now.set(LESSON_START + timedelta(minutes=20))
    ended = await school.lessons.end_lesson(school.lesson.id)
    assert ended is not None
    frozen = await school.records.reports.close(ended, by=school.teacher.id)
    assert frozen.data()["window"]["seconds"] == 20 * 60


async def test_a_frozen_report_does_not_change_and_still_verifies(
    school: School, now: FakeNow
) -> None:
    await hold_lesson(school, now)
    reports = school.records.reports
    frozen = await reports.close(school.lesson, by=school.teacher.id)
    lesson = await school.lessons.get_lesson(school.lesson.id)
    assert lesson is not None
    # Later events (a recovery after the close, a straggler) change neither view nor verdict.
    now.advance(minutes=5)
    await school.records.attendance.joined(lesson.id, "p_duc", attendee(school, "HS003"))
    # A roster correction after the lesson is not tampering either.
    await school.records.rosters.import_csv(
        school.school_class.id,
        "student_code,full_name,parent_contact\nHS002,Trần Thị Bích Ngọc Anh,\n".encode(),
    )
    view = await reports.view(lesson)
    assert view.frozen == frozen
    assert view.to_json()["frozen"]["content_hash"] == frozen.content_hash
    assert line(view.data, "HS003")["status"] == "absent"
    verification = await reports.verify(lesson)
    assert verification is not None and verification.ok


async def test_a_lesson_taught_early_is_closed_by_version_2_and_verifies(
    school: School, now: FakeNow
) -> None:
    recorder, lesson_id = school.records.attendance, school.lesson.id
    teacher_attendee = Attendee("teacher", "Teacher")
    now.set(LESSON_START - timedelta(minutes=12))
    await recorder.joined(lesson_id, "t1", teacher_attendee)
    await recorder.joined(lesson_id, "p_an", attendee(school, "HS001"))
    now.set(LESSON_START - timedelta(minutes=11))
    await recorder.left(lesson_id, "p_an", attendee(school, "HS001"))
    await recorder.left(lesson_id, "t1", teacher_attendee)
    ended = await school.lessons.end_lesson(lesson_id)
    assert ended is not None
    reports = school.records.reports
    frozen = await reports.close(ended, by=school.teacher.id)
    data = frozen.data()
    assert (data["version"], data["window"]["basis"]) == (2, "taught")
    assert line(data, "HS001")["status"] == "present"
    verification = await reports.verify(ended)
    assert verification is not None and verification.ok


async def test_a_stored_version_1_report_still_verifies(school: School, now: FakeNow) -> None:
    """Frozen before versions existed: recomputed by the version 1 rules it was made with."""
    await hold_lesson(school, now)
    reports = school.records.reports
    now.set(LESSON_END + timedelta(minutes=1))
    ended = await school.lessons.end_lesson(school.lesson.id)
    assert ended is not None
    old = freeze(await reports.derive(ended, as_of=now()), closed_by=None)
    body = json.loads(old.body)
    v1 = lesson_report(
        ended,
        await reports.roster_of(ended),
        await school.records.attendance.events(ended.id),
        as_of=now(),
        version=1,
    )
    frozen = freeze(v1, closed_by=school.teacher.id)
    assert "version" not in frozen.data() and body["version"] == 2
    assert await reports.store.add(frozen)
    verification = await reports.verify(ended)
    assert verification is not None and verification.ok
    view = await reports.view(ended)
    assert "version" not in view.data


async def allow_tampering(database: Database, table: str) -> None:
    """What an intruder with the database owner's rights could do: switch the trigger off."""
    async with database.engine.begin() as connection:
        if database.engine.dialect.name == "postgresql":
            await connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            await connection.execute(text(f"DROP TRIGGER {table}_no_update"))


async def test_a_tampered_report_row_is_detected(
    school: School, now: FakeNow, database: Database
) -> None:
    await hold_lesson(school, now)
    reports = school.records.reports
    frozen = await reports.close(school.lesson, by=school.teacher.id)
    lesson = await school.lessons.get_lesson(school.lesson.id)
    assert lesson is not None
    await allow_tampering(database, "lesson_reports")
    edited = frozen.body.replace('"status":"late"', '"status":"present"')
    assert edited != frozen.body
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE lesson_reports SET body = :body WHERE lesson_id = :id"),
            {"body": edited, "id": lesson.id},
        )
    verification = await reports.verify(lesson)
    assert verification is not None
    assert verification.to_json() == {"ok": False, "content_hash_ok": False, "events_match": False}


async def test_a_tampered_attendance_event_is_detected(
    school: School, now: FakeNow, database: Database
) -> None:
    await hold_lesson(school, now)
    reports = school.records.reports
    await reports.close(school.lesson, by=school.teacher.id)
    lesson = await school.lessons.get_lesson(school.lesson.id)
    assert lesson is not None
    await allow_tampering(database, "attendance_events")
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE attendance_events SET at = :at WHERE participant_id = 'p_ngoc'"),
            {"at": _raw_time(database, LESSON_START)},
        )
    verification = await reports.verify(lesson)
    assert verification is not None
    assert (verification.content_hash_ok, verification.events_match) == (True, False)


def _raw_time(database: Database, moment: datetime) -> datetime:
    """A time for raw SQL, stored the way UTCDateTime stores it on each backend."""
    return moment if database.engine.dialect.name == "postgresql" else moment.replace(tzinfo=None)


async def test_verifying_an_open_report_says_nothing(school: School) -> None:
    assert await school.records.reports.verify(school.lesson) is None


async def test_class_report_over_a_date_range(school: School, now: FakeNow) -> None:
    await hold_lesson(school, now)
    second = await school.lessons.create_class_lesson(
        "Tiếng Việt",
        class_id=school.school_class.id,
        teacher_id=school.teacher.id,
        scheduled_start=LESSON_START + timedelta(days=7),
        scheduled_end=LESSON_END + timedelta(days=7),
    )
    await school.records.links.ensure_links(second.lesson)
    now.set(LESSON_END + timedelta(days=8))
    await school.records.reports.close(school.lesson, by=school.teacher.id)
    roster = [
        RosterLine(e.id, e.student_code, e.full_name)
        for e in await school.records.rosters.entries(school.school_class.id)
    ]
    data = await school.records.reports.class_report(
        school.school_class.id, "5A", roster, date(2025, 9, 1), date(2025, 9, 30)
    )
    assert [lesson["frozen"] for lesson in data["lessons"]] == [True, False]
    rows = {row["student_code"]: row for row in data["students"]}
    assert (rows["HS001"]["lessons"], rows["HS001"]["attended"]) == (2, 1)
    assert (rows["HS002"]["late"], rows["HS002"]["absent"]) == (1, 1)
    only_first_week = await school.records.reports.class_report(
        school.school_class.id, "5A", roster, date(2025, 9, 8), date(2025, 9, 8)
    )
    assert len(only_first_week["lessons"]) == 1
    with pytest.raises(ClassroomError) as refused:
        await school.records.reports.class_report(
            school.school_class.id, "5A", roster, date(2025, 9, 8), date(2025, 9, 1)
        )
    assert refused.value.code == "invalid_range"
