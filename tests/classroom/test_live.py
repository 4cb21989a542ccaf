"""The live lesson's rules (classroom/live.py), without sockets or media: commands in, events
out, in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import pytest

from classroom.chat import ChatMessage
from classroom.errors import ClassroomError
from classroom.lessons import Admission, Lesson
from classroom.live import ControlsChange, Event, LiveLesson, Participant
from classroom.moderation import ROLES, TEACHER_ONLY, Permission
from classroom.safety import Action

LESSON = Lesson("l_1", "123456", "Toán 5A", datetime(2026, 12, 4, tzinfo=UTC), None)
_ids = count(1)


def person(role: str, name: str = "", *, rostered: bool = False) -> Participant:
    """A newcomer in ``role`` (teacher, student, guest; moderator = a student made one)."""
    admitted_as = "student" if role in ("guest", "moderator") else role
    n = next(_ids)
    admission = Admission(
        LESSON,
        admitted_as,  # type: ignore[arg-type]
        name or f"{role.title()} {n}",
        roster_entry_id=f"00000000-0000-0000-0000-{n:012d}" if rostered else None,
        guest=role == "guest",
    )
    p = Participant(f"p_{n}", admission)
    if role == "moderator":
        p.role = "moderator"
    return p


def lesson(**kwargs: object) -> LiveLesson:
    return LiveLesson(LESSON, **kwargs)  # type: ignore[arg-type]


def seat(live: LiveLesson, *people: Participant) -> None:
    for p in people:
        live.enter(p)


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


def post(
    live: LiveLesson, sender: Participant, text: str, to: str | None = None
) -> tuple[ChatMessage, list[Event]]:
    message = live.draft(sender, text, to=to, at=1.0, max_chars=500)
    return message, live.post(message)


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ClassroomError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    assert refused.value.message
    return refused.value.code


# -- roles × actions --------------------------------------------------------------------------


def acting(actor_role: str, target_role: str) -> tuple[LiveLesson, Participant, Participant]:
    live = lesson()
    teacher = person("teacher")
    seat(live, teacher)
    actor = teacher if actor_role == "teacher" else person(actor_role)
    target = person(target_role)
    seat(live, *([actor] if actor is not teacher else []), target)
    return live, actor, target


TARGETED = {
    "mute": lambda live, a, t: live.mute(a, t.id, "audio"),
    "stop_video": lambda live, a, t: live.mute(a, t.id, "video"),
    "ask_unmute": lambda live, a, t: live.ask_unmute(a, t),
    "lower_hand": lambda live, a, t: live.lower_hand(a, t),
    "remove": lambda live, a, t: live.remove(a, t, False),
    "ban": lambda live, a, t: live.remove(a, t, True),
    "make_moderator": lambda live, a, t: live.set_moderator(a, t, True),
}


@pytest.mark.parametrize("action", sorted(TARGETED))
@pytest.mark.parametrize("actor_role", ["teacher", "moderator", "student", "guest"])
@pytest.mark.parametrize("target_role", ["moderator", "student", "guest"])
def test_who_may_act_on_whom(action: str, actor_role: str, target_role: str) -> None:
    live, actor, target = acting(actor_role, target_role)
    staff = actor_role in ("teacher", "moderator")
    teacher_only = action == "make_moderator"
    may = staff and (actor_role == "teacher" or not teacher_only)
    if may:
        TARGETED[action](live, actor, target)
    else:
        assert refusal(TARGETED[action], live, actor, target) == "forbidden"


@pytest.mark.parametrize("action", sorted(TARGETED))
def test_nobody_acts_on_the_teacher(action: str) -> None:
    live = lesson()
    teacher, moderator = person("teacher"), person("moderator")
    seat(live, teacher, moderator)
    assert refusal(TARGETED[action], live, moderator, teacher) == "forbidden"


def test_staff_use_their_own_buttons_on_themselves() -> None:
    live, teacher, _ = acting("teacher", "student")
    assert refusal(live.mute, teacher, teacher.id, "audio") == "forbidden"
    assert refusal(live.mute, teacher, "p_nobody", "audio") == "not_found"


def test_the_checks_match_the_moderation_table() -> None:
    for role in ROLES:
        actor = person(role)
        for action in Action:
            try:
                LiveLesson.check(actor, action)
            except ClassroomError:
                allowed = False
            else:
                allowed = True
            assert allowed == (
                role == "teacher" or (role == "moderator" and action not in TEACHER_ONLY)
            )


# -- moderators, mutes, hands ---------------------------------------------------------------


def test_a_new_moderator_is_announced_and_sees_the_knocks() -> None:
    live = lesson()
    teacher, student, guest = person("teacher"), person("student", rostered=True), person("guest")
    seat(live, teacher, student)
    assert live.arrive(guest)
    live.knock(guest)
    events = live.set_moderator(teacher, student, True)
    assert student.role == "moderator" and student.staff
    assert events[0] == Event("participant_updated", student.describe(), (teacher.id, student.id))
    assert named(events, "knocking") == [Event("knocking", live.knock_json(guest), (student.id,))]
    assert live.set_moderator(teacher, student, True) == []  # nothing changes twice
    live.set_moderator(teacher, student, False)
    assert student.role == "student"


def test_muting_every_student_spares_staff_and_stops_their_own_unmute() -> None:
    live = lesson()
    teacher, moderator = person("teacher"), person("moderator")
    a, b = person("student"), person("guest")
    seat(live, teacher, moderator, a, b)
    muted = live.mute(moderator, "students", "audio")
    assert muted.targets == [a, b] and muted.kind == "audio"
    assert [e.to for e in muted.events] == [(a.id,), (b.id,)]
    assert not live.may_send(a, "audio") and live.may_send(moderator, "audio")
    assert refusal(live.unmuted_self, a, "audio") == "forbidden"
    # An invitation lets the student turn the microphone on once.
    live.ask_unmute(teacher, a)
    assert live.may_send(a, "audio")
    live.unmuted_self(a, "audio")
    assert not a.unmute_invited and "audio" not in a.muted_by_staff
    assert live.may_send(a, "audio")  # the lesson's permissions still allow it


def test_permissions_decide_what_students_may_send() -> None:
    live, teacher, student = acting("teacher", "student")
    live.set_controls(teacher, ControlsChange(permissions=frozenset({Permission.CHAT})))
    assert not live.may_send(student, "audio") and not live.may_send(student, "video")
    assert live.may_send(teacher, "audio") and live.may_send(teacher, "video")
    assert refusal(live.unmuted_self, student, "video") == "forbidden"


def test_students_hear_but_do_not_see_each_other() -> None:
    live = lesson()
    teacher, a, b = person("teacher"), person("student"), person("guest")
    seat(live, teacher, a, b)
    assert live.receivers(a.id, "audio") == (teacher.id, b.id)
    assert live.receivers(a.id, "video") == (teacher.id,)
    assert live.receivers(teacher.id, "video") == (a.id, b.id)


def test_hands_queue_first_raised_first_and_leave_with_their_owner() -> None:
    live = lesson()
    teacher, a, b, c = person("teacher"), person("student"), person("student"), person("guest")
    seat(live, teacher, a, b, c)
    live.raise_hand(b, True, 10.0)
    live.raise_hand(c, True, 11.0)
    events = live.raise_hand(a, True, 12.0)
    assert events == [Event("hands", {"queue": [b.id, c.id, a.id]}, live.everyone())]
    assert live.raise_hand(a, True, 13.0) == []  # already up: its place is kept
    live.raise_hand(c, False, 14.0)
    assert live.hand_queue() == [b.id, a.id]
    live.lower_hand(teacher, b)
    assert live.hand_queue() == [a.id]
    assert live.lower_hand(teacher, b) == []
    left = live.leave(a, "left")
    assert named(left, "hands") == [Event("hands", {"queue": []}, live.everyone())]


# -- the waiting room ---------------------------------------------------------------------------


def test_nobody_but_the_teacher_enters_before_staff_is_here() -> None:
    live = lesson(waiting_room="nobody")
    student = person("student", rostered=True)
    assert live.arrive(student)  # no teacher yet
    teacher = person("teacher")
    assert not live.arrive(teacher)
    live.knock(student)
    seat(live, teacher)
    assert live.who_may_enter() == [student]


@pytest.mark.parametrize(
    ("mode", "waits"),
    [
        ("everyone", {"student": True, "rostered": True, "guest": True}),
        ("guests", {"student": True, "rostered": False, "guest": True}),
        ("nobody", {"student": False, "rostered": False, "guest": False}),
    ],
)
def test_the_waiting_room_mode_decides_who_waits(mode: str, waits: dict[str, bool]) -> None:
    live = lesson(waiting_room=mode)
    seat(live, person("teacher"))
    newcomers = {
        "student": person("student"),
        "rostered": person("student", rostered=True),
        "guest": person("guest"),
    }
    assert {k: live.arrive(p) for k, p in newcomers.items()} == waits


def test_knocks_are_seen_by_staff_only_and_end_when_admitted() -> None:
    live = lesson()
    teacher, student = person("teacher"), person("student", rostered=True)
    seat(live, teacher, student)
    guest = person("guest")
    (knock,) = live.knock(guest)
    assert knock == Event("knocking", live.knock_json(guest), (teacher.id,))
    assert live.knock_json(guest)["on_class_list"] is False
    assert live.admit_checks(teacher, guest.id) == [guest]
    assert refusal(live.admit_checks, student, guest.id) == "forbidden"
    entered = live.enter(guest)
    assert entered.events[0] == Event(
        "knock_ended", {"id": guest.id, "reason": "admitted"}, (teacher.id,)
    )
    assert entered.events[1].name == "participant_joined"
    assert entered.events[1].to == (teacher.id, student.id)
    assert guest.state == "admitted" and not live.waiting


def test_admit_all_lets_in_as_many_as_fit_and_one_that_does_not_fit_is_refused() -> None:
    live = lesson(capacity=3)
    teacher = person("teacher")
    seat(live, teacher)
    waiting = [person("guest") for _ in range(4)]
    for p in waiting:
        live.knock(p)
    assert live.admit_checks(teacher, "all") == waiting[:2]
    seat(live, *waiting[:2])
    assert live.admit_checks(teacher, "all") == []
    assert refusal(live.admit_checks, teacher, waiting[2].id) == "lesson_full"
    assert refusal(live.admit_checks, teacher, "p_nobody") == "not_found"


def test_deny_tells_the_one_denied_and_staff_stop_seeing_the_knock() -> None:
    live = lesson()
    teacher, moderator = person("teacher"), person("moderator")
    seat(live, teacher, moderator)
    a, b = person("guest"), person("guest")
    live.knock(a)
    live.knock(b)
    assert live.deny_checks(moderator, "all", False) == [a, b]
    assert refusal(live.deny_checks, moderator, "all", True) == "forbidden"
    assert live.deny_checks(moderator, a.id, True) == [a]
    events = live.deny(moderator, a, False)
    assert events == [
        Event("knock_ended", {"id": a.id, "reason": "denied"}, (teacher.id, moderator.id)),
        Event("denied", {"by": moderator.id, "banned": False}, (a.id,)),
    ]
    assert list(live.waiting) == [b.id]


def test_the_waiting_room_and_the_lesson_have_their_limits() -> None:
    live = lesson(capacity=1, waiting_capacity=1)
    seat(live, person("teacher"))
    first = person("guest")
    assert live.arrive(first)
    live.knock(first)
    assert refusal(live.arrive, person("guest")) == "waiting_room_full"
    assert refusal(live.arrive, person("student", rostered=True)) == "lesson_full"


def test_the_same_student_on_a_second_device_replaces_the_first() -> None:
    live = lesson(waiting_room="nobody")
    seat(live, person("teacher"))
    phone = person("student", "Nguyễn Văn An", rostered=True)
    seat(live, phone)
    laptop = Participant("p_laptop", phone.admission)
    assert live.knock_json(laptop)["already_connected"] is True
    entered = live.enter(laptop)
    assert entered.replaced == [phone]


# -- controls: lock, chat, end ----------------------------------------------------------------


def test_a_locked_lesson_refuses_newcomers_but_the_teacher() -> None:
    live = lesson()
    teacher = person("teacher")
    seat(live, teacher)
    changes = live.settings_changes(teacher, ControlsChange(locked=True))
    assert changes == [(Action.LOCK, {})]
    (settings,) = live.set_controls(teacher, ControlsChange(locked=True))
    assert settings.name == "settings" and settings.data["locked"] is True
    assert refusal(live.arrive, person("student", rostered=True)) == "lesson_locked"
    assert not live.arrive(person("teacher"))
    # No change: nothing to audit.
    assert live.settings_changes(teacher, ControlsChange(locked=True)) == []


def test_settings_are_staff_only_and_each_change_is_one_audit_action() -> None:
    live, teacher, student = acting("teacher", "student")
    assert refusal(live.settings_changes, student, ControlsChange(chat=False)) == "forbidden"
    assert refusal(live.set_controls, student, ControlsChange(chat=False)) == "forbidden"
    changes = live.settings_changes(
        teacher,
        ControlsChange(
            chat=False, waiting_room="everyone", permissions=frozenset({Permission.VIDEO})
        ),
    )
    assert [a for a, _ in changes] == [
        Action.CHAT_OFF,
        Action.SET_WAITING_ROOM,
        Action.SET_PERMISSIONS,
    ]


def test_chat_off_and_on() -> None:
    live, teacher, student = acting("teacher", "student")
    message, events = post(live, student, "  Em chào cô  ")
    assert message.text == "Em chào cô"
    assert events == [Event("chat", message.to_json(), (teacher.id,))]
    live.set_controls(teacher, ControlsChange(chat=False))
    assert refusal(post, live, student, "Còn ai không?") == ("forbidden")
    assert refusal(post, live, student, "Cô ơi", teacher.id) == ("forbidden")
    post(live, teacher, "Chat is off for you, not for me")
    live.set_controls(teacher, ControlsChange(chat=True))
    post(live, student, "Cảm ơn cô", teacher.id)
    assert [m.text for m in live.chat.visible_to(student.id)] == [
        "Em chào cô",
        "Chat is off for you, not for me",
        "Cảm ơn cô",
    ]


def test_private_messages_go_to_the_teacher_only_and_bad_text_is_refused() -> None:
    live = lesson()
    teacher, a, b = person("teacher"), person("student"), person("guest")
    seat(live, teacher, a, b)
    assert refusal(post, live, a, "psst", b.id) == "forbidden"
    message, events = post(live, a, "Cô ơi", teacher.id)
    assert events[0].to == (teacher.id,) and message.to == teacher.id
    assert [m.id for m in live.chat.visible_to(b.id)] == []
    assert refusal(post, live, a, "\u202eevil") == "invalid_message"
    assert refusal(post, live, a, "x" * 501) == "invalid_message"
    assert len(live.chat) == 1  # what was refused was not kept


def test_deleting_messages() -> None:
    live = lesson()
    teacher, moderator, student = person("teacher"), person("moderator"), person("student")
    seat(live, teacher, moderator, student)
    by_teacher, _ = post(live, teacher, "Bài 3")
    by_student, _ = post(live, student, "spam")
    assert refusal(live.delete_message, student, by_student.id) == "forbidden"
    assert refusal(live.delete_message, moderator, by_teacher.id) == "forbidden"
    assert refusal(live.delete_message, moderator, "m_nope") == "not_found"
    (deleted,) = live.delete_message(moderator, by_student.id)
    assert deleted.data == {"id": by_student.id, "by": moderator.id}
    assert [m.id for m in live.chat.visible_to(teacher.id)] == [by_teacher.id]


def test_only_the_teacher_ends_the_lesson_and_then_nobody_comes_in() -> None:
    live = lesson()
    teacher, moderator, student = person("teacher"), person("moderator"), person("student")
    seat(live, teacher, moderator, student)
    knocking = person("guest")
    live.knock(knocking)
    assert refusal(live.end, moderator) == "forbidden"
    (ended,) = live.end(teacher)
    assert ended.to == (teacher.id, moderator.id, student.id, knocking.id)
    assert live.ended
    assert refusal(live.arrive, person("teacher")) == "lesson_ended"
    assert refusal(live.enter, knocking) == "lesson_ended"


def test_leaving_and_coming_back() -> None:
    live = lesson()
    teacher, student = person("teacher"), person("student")
    seat(live, teacher, student)
    (dropped,) = live.connection_lost(student)
    assert dropped.data["state"] == "reconnecting" and dropped.to == (teacher.id,)
    assert live.staff_present()
    (back,) = live.reconnected(student)
    assert back.data["state"] == "connected"
    assert live.link_changed(student, "weak")[0].to == (teacher.id,)
    assert live.link_changed(student, "weak") == []
    (left,) = live.leave(student, "left")
    assert left == Event("participant_left", {"id": student.id, "reason": "left"}, (teacher.id,))
    assert live.leave(student, "left") == []
    live.leave(teacher, "left")
    assert live.empty


def test_welcome_shows_knocks_to_staff_only() -> None:
    live = lesson()
    teacher, student = person("teacher"), person("student")
    seat(live, teacher, student)
    knocking = person("guest")
    live.knock(knocking)
    assert [k["id"] for k in live.welcome(teacher)["knocking"]] == [knocking.id]
    assert live.welcome(student)["knocking"] == []
    assert [p["id"] for p in live.welcome(student)["participants"]] == [teacher.id]
