"""The permission rules of classroom/moderation.py, for every role and action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classroom.errors import ClassroomError
from classroom.moderation import (
    DEFAULT_PERMISSIONS,
    ROLES,
    TEACHER_ONLY,
    WAITING_ROOM_MODES,
    Action,
    Controls,
    Permission,
    check_action,
    check_permission,
    may,
    must_wait,
    parse_permissions,
)


def allowed(actor: str, action: Action, target: str | None = None) -> bool:
    try:
        check_action(actor, action, target)
    except ClassroomError as refused:
        assert refused.code == "forbidden" and refused.message
        return False
    return True


@pytest.mark.parametrize("action", list(Action))
def test_students_and_guests_take_no_moderation_action(action: Action) -> None:
    for actor in ("student", "guest", "", "admin"):
        for target in ROLES:
            assert not allowed(actor, action, target)


@pytest.mark.parametrize("action", list(Action))
def test_the_teacher_takes_every_action_but_never_on_the_teacher(action: Action) -> None:
    for target in ("moderator", "student", "guest", None):
        assert allowed("teacher", action, target)
    assert not allowed("teacher", action, "teacher")


@pytest.mark.parametrize("action", list(Action))
def test_moderators_take_every_action_except_the_teachers_own(action: Action) -> None:
    for target in ("moderator", "student", "guest", None):
        assert allowed("moderator", action, target) == (action not in TEACHER_ONLY)
    assert not allowed("moderator", action, "teacher")


def test_end_lesson_and_moderator_changes_are_the_teachers_alone() -> None:
    assert TEACHER_ONLY == {Action.END_LESSON, Action.MAKE_MODERATOR, Action.REVOKE_MODERATOR}


@given(
    role=st.sampled_from(["student", "guest"]),
    granted=st.frozensets(st.sampled_from(list(Permission))),
    chat=st.booleans(),
    permission=st.sampled_from(list(Permission)),
)
def test_students_may_only_what_the_lesson_grants(
    role: str, granted: frozenset[Permission], chat: bool, permission: Permission
) -> None:
    controls = Controls(chat=chat, permissions=granted)
    expected = permission in granted and (
        chat or permission not in (Permission.CHAT, Permission.PRIVATE_CHAT)
    )
    assert may(role, permission, controls) == expected
    if not expected:
        with pytest.raises(ClassroomError) as refused:
            check_permission(role, permission, controls)
        assert refused.value.code == "forbidden"


@pytest.mark.parametrize("role", ["teacher", "moderator"])
def test_staff_are_never_limited_by_student_permissions(role: str) -> None:
    controls = Controls(chat=False, permissions=frozenset())
    assert all(may(role, p, controls) for p in Permission)


def test_defaults_let_students_speak_show_and_chat_but_not_share_screens() -> None:
    controls = Controls()
    assert controls.waiting_room == "guests" and not controls.locked and controls.chat
    assert Permission.SCREEN not in DEFAULT_PERMISSIONS
    assert {Permission.UNMUTE, Permission.VIDEO, Permission.CHAT} <= DEFAULT_PERMISSIONS


@pytest.mark.parametrize("mode", WAITING_ROOM_MODES)
def test_who_waits(mode: str) -> None:
    for role in ("teacher", "moderator"):
        assert not must_wait(role, False, mode)  # type: ignore[arg-type]
    assert must_wait("student", True, mode) == (mode == "everyone")  # type: ignore[arg-type]
    assert must_wait("guest", False, mode) == (mode != "nobody")  # type: ignore[arg-type]


def test_permissions_parse_or_refuse() -> None:
    assert parse_permissions(["chat", "video"]) == {Permission.CHAT, Permission.VIDEO}
    with pytest.raises(ClassroomError) as refused:
        parse_permissions(["chat", "fly"])
    assert refused.value.code == "malformed"
